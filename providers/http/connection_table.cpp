#include "providers/http/connection_table.hpp"

#include <algorithm>
#include <cstdio>

namespace pgc::providers::http {

ConnectionTable::Admission ConnectionTable::admit(std::uint64_t id, const std::string& address,
                                                  const TryEvict& try_evict) {
  Admission admission;
  auto held = count_.find(address);
  if (held != count_.end() && held->second >= per_address_ && !evict_one(address, try_evict, admission))
    return admission;
  if (entries_.size() >= total_ && !evict_one("", try_evict, admission)) return admission;
  entries_.push_back({id, address});
  by_id_[id] = std::prev(entries_.end());
  ++count_[address];
  admission.admitted = true;
  return admission;
}

bool ConnectionTable::evict_one(const std::string& address, const TryEvict& try_evict, Admission& admission) {
  std::vector<Entries::iterator> candidates;
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (address.empty() || it->address == address) candidates.push_back(it);
  // The busiest address first; within it, the oldest (the sort is stable).
  std::stable_sort(candidates.begin(), candidates.end(),
                   [this](Entries::iterator a, Entries::iterator b) { return count_[a->address] > count_[b->address]; });
  for (auto ask : {Ask::stalled, Ask::any}) {
    for (auto it : candidates) {
      if (!try_evict(it->id, ask)) continue;
      admission.evicted.push_back(it->id);
      erase(it);
      return true;
    }
  }
  return false;
}

void ConnectionTable::remove(std::uint64_t id) {
  auto found = by_id_.find(id);
  if (found != by_id_.end()) erase(found->second);
}

void ConnectionTable::erase(Entries::iterator it) {
  auto held = count_.find(it->address);
  if (held != count_.end() && --held->second == 0) count_.erase(held);
  by_id_.erase(it->id);
  entries_.erase(it);
}

std::string address_key(const std::string& address_text, bool is_v6, const unsigned char* v6_bytes) {
  if (!is_v6 || v6_bytes == nullptr) return address_text;
  static constexpr unsigned char k_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(v6_bytes, v6_bytes + 12, k_v4_mapped)) {
    char text[16];
    std::snprintf(text, sizeof text, "%u.%u.%u.%u", v6_bytes[12], v6_bytes[13], v6_bytes[14], v6_bytes[15]);
    return text;
  }
  char text[40];
  std::snprintf(text, sizeof text, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", v6_bytes[0], v6_bytes[1], v6_bytes[2],
                v6_bytes[3], v6_bytes[4], v6_bytes[5], v6_bytes[6], v6_bytes[7]);
  return text;
}

}  // namespace pgc::providers::http
