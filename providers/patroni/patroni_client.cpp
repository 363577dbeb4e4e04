// Implementation pending (being written); intentionally empty translation unit.
#include "providers/patroni/patroni_client.hpp"
