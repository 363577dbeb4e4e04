// Who keeps a place when the HTTP server is full: the caps in total and per address, the
// order of eviction, connections that may not be evicted, and the per-address key (IPv6 /64).

#include <catch2/catch.hpp>

#include <set>

#include "providers/http/connection_table.hpp"

using pgc::providers::http::address_key;
using pgc::providers::http::ConnectionTable;

namespace {

// Every connection may be evicted except those in busy (their handler runs); those in headed
// have their whole request head and decline a round that asks only stalled ones. Records who
// was asked.
struct Evictor {
  std::set<std::uint64_t> busy;
  std::set<std::uint64_t> headed;
  std::vector<std::uint64_t> asked;
  ConnectionTable::TryEvict fn() {
    return [this](std::uint64_t id, ConnectionTable::Ask ask) {
      asked.push_back(id);
      if (ask == ConnectionTable::Ask::stalled && headed.contains(id)) return false;
      return !busy.contains(id);
    };
  }
};

}  // namespace

TEST_CASE("connection table: over the per-address cap, the oldest connection of that address gives up its place") {
  ConnectionTable table(10, 2);
  Evictor e;
  CHECK(table.admit(1, "10.0.0.1", e.fn()).admitted);
  CHECK(table.admit(2, "10.0.0.2", e.fn()).admitted);
  CHECK(table.admit(3, "10.0.0.1", e.fn()).admitted);
  CHECK(e.asked.empty());
  auto third = table.admit(4, "10.0.0.1", e.fn());
  CHECK(third.admitted);
  CHECK(third.evicted == std::vector<std::uint64_t>{1});
  CHECK(table.size() == 3);
  // The oldest is busy (its handler runs): the next one of the address goes.
  e.busy = {3};
  auto fourth = table.admit(5, "10.0.0.1", e.fn());
  CHECK(fourth.evicted == std::vector<std::uint64_t>{4});
  // Both busy: refused, and no other address is touched.
  e.busy = {3, 5};
  e.asked.clear();
  CHECK_FALSE(table.admit(6, "10.0.0.1", e.fn()).admitted);
  CHECK(e.asked == std::vector<std::uint64_t>{3, 5, 3, 5});  // stalled ones first, then any
  table.remove(3);
  table.remove(3);  // idempotent
  CHECK(table.admit(7, "10.0.0.1", e.fn()).admitted);
}

TEST_CASE("connection table: over the total, the address holding the most places gives up its oldest first") {
  ConnectionTable table(4, 4);
  Evictor e;
  CHECK(table.admit(1, "lone", e.fn()).admitted);
  CHECK(table.admit(2, "crowd", e.fn()).admitted);
  CHECK(table.admit(3, "crowd", e.fn()).admitted);
  CHECK(table.admit(4, "crowd", e.fn()).admitted);
  auto newcomer = table.admit(5, "new", e.fn());
  CHECK(newcomer.admitted);
  CHECK(newcomer.evicted == std::vector<std::uint64_t>{2});
  // Two addresses with one place each and the crowd with two: the crowd again.
  CHECK(table.admit(6, "other", e.fn()).evicted == std::vector<std::uint64_t>{3});
  // Every place held by a running handler: refused.
  e.busy = {1, 4, 5, 6};
  CHECK_FALSE(table.admit(7, "late", e.fn()).admitted);
  CHECK(table.size() == 4);
}

TEST_CASE("connection table: a request whose head has arrived keeps its place against a reconnecting crowd") {
  // serve's default: 8 places per address. A crowd of one address holds them and reconnects as
  // fast as it is evicted; an honest request from the same address arrives among them.
  ConnectionTable table(64, 8);
  Evictor e;
  std::uint64_t id = 1;
  for (; id <= 8; ++id) REQUIRE(table.admit(id, "127.0.0.1", e.fn()).admitted);
  const std::uint64_t probe = id++;
  auto admitted = table.admit(probe, "127.0.0.1", e.fn());
  REQUIRE(admitted.admitted);
  CHECK(admitted.evicted == std::vector<std::uint64_t>{1});
  e.headed.insert(probe);  // its request head is in: it is being read, or answered
  // Many more newcomers than places: each takes a stalled one's place, never the probe's.
  for (int i = 0; i < 100; ++i, ++id) {
    auto newcomer = table.admit(id, "127.0.0.1", e.fn());
    REQUIRE(newcomer.admitted);
    REQUIRE(newcomer.evicted.size() == 1);
    CHECK(newcomer.evicted.front() != probe);
  }
  // When every place holds a whole head, the oldest of them goes; a running handler never.
  table.remove(probe);
  std::vector<std::uint64_t> held;
  for (int i = 0; i < 8; ++i, ++id) {
    REQUIRE(table.admit(id, "127.0.0.1", e.fn()).admitted);
    e.headed.insert(id);
    held.push_back(id);
  }
  e.busy = {held[0]};
  CHECK(table.admit(id++, "127.0.0.1", e.fn()).evicted == std::vector<std::uint64_t>{held[1]});
}

TEST_CASE("connection table: the per-address key is the IPv4 address, or the IPv6 /64") {
  CHECK(address_key("127.0.0.1", false, nullptr) == "127.0.0.1");
  const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
  CHECK(address_key("::ffff:192.0.2.7", true, mapped) == "192.0.2.7");
  const unsigned char a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xaa, 0xbb, 0, 0, 0, 0, 0, 1};
  const unsigned char b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 9};
  const unsigned char c[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0xaa, 0xbb, 0, 0, 0, 0, 0, 1};
  CHECK(address_key("2001:db8:1:2:aabb::1", true, a) == "2001:0db8:0001:0002::/64");
  CHECK(address_key("x", true, b) == address_key("y", true, a));
  CHECK(address_key("z", true, c) != address_key("y", true, a));
}
