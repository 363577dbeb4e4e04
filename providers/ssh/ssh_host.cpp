// Implementation pending (being written); intentionally empty translation unit.
#include "providers/ssh/ssh_host.hpp"
