// Implementation pending (being written); intentionally empty translation unit.
#include "providers/ssh/remote_host.hpp"
