// Implementation pending (being written); intentionally empty translation unit.
#include "providers/postgres/postgres_probe.hpp"
