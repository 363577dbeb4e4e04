#pragma once
// Which connections the HTTP server keeps when it is full: the open connections in the order
// they were accepted, capped in total and per client address. A newcomer over a cap takes the
// place of a connection that may be dropped (still reading its request, or writing its answer;
// never while its handler runs): over the per-address cap, the oldest of its own address; over
// the total, the oldest of the address holding the most places. Connections whose request head
// has not arrived in full go first: only when none of those may be dropped does a connection
// that has sent its whole head (it is being read or answered) give up its place, and only when
// none may be dropped at all is the newcomer refused. So clients that connect and send nothing,
// or trickle, cannot lock anyone out: each newcomer gets the place of the stalest such
// connection, one address competes mostly with itself, and a client that reconnects as fast as
// it is evicted cannot push out a request that has already arrived, however new it is.
// Not thread-safe (the server holds a mutex around it).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <string>
#include <vector>

namespace pgc::providers::http {

class ConnectionTable {
 public:
  ConnectionTable(std::size_t total, std::size_t per_address) : total_(total), per_address_(per_address) {}

  struct Admission {
    bool admitted = false;
    std::vector<std::uint64_t> evicted;  // connections that gave up their place to it
  };
  // Which connections a round of eviction may ask.
  enum class Ask {
    stalled,  // only one whose request head has not arrived in full
    any,      // any that is not running its handler
  };
  // try_evict(id, ask) asks connection id to give up its place; true when it did (it will
  // close). With Ask::stalled, a connection that has its whole request head declines.
  using TryEvict = std::function<bool(std::uint64_t, Ask)>;

  // Admits connection id from address (an address key: see address_key()), evicting as needed.
  Admission admit(std::uint64_t id, const std::string& address, const TryEvict& try_evict);
  // Forgets a connection; no-op for one that was evicted or never admitted.
  void remove(std::uint64_t id);
  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::uint64_t id;
    std::string address;
  };
  using Entries = std::list<Entry>;

  // The oldest connection (of address, or of the busiest address when empty) that gives up its
  // place, asking the stalled ones first; removed from the table. False when none does.
  bool evict_one(const std::string& address, const TryEvict& try_evict, Admission& admission);
  void erase(Entries::iterator it);

  std::size_t total_;
  std::size_t per_address_;
  Entries entries_;  // oldest first
  std::map<std::uint64_t, Entries::iterator> by_id_;
  std::map<std::string, std::size_t> count_;  // places held per address
};

// The key the per-address cap counts by: an IPv4 address as text (also an IPv4-mapped IPv6
// one), an IPv6 address by its /64 prefix (one host commonly holds a whole /64).
std::string address_key(const std::string& address_text, bool is_v6, const unsigned char* v6_bytes);

}  // namespace pgc::providers::http
