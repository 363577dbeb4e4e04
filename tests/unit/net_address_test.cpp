#include <catch2/catch.hpp>

#include "util/net_address.hpp"

using pgc::is_dns_name;
using pgc::is_ipv4;
using pgc::is_ipv6;

TEST_CASE("is_ipv4 accepts dotted quads 0..255 only", "[util][net_address]") {
  CHECK(is_ipv4("10.0.0.11"));
  CHECK(is_ipv4("0.0.0.0"));
  CHECK(is_ipv4("255.255.255.255"));
  CHECK_FALSE(is_ipv4("10.0.0.256"));
  CHECK_FALSE(is_ipv4("10.0.0"));
  CHECK_FALSE(is_ipv4("10.0.0.1.2"));
  CHECK_FALSE(is_ipv4("10..0.1"));
  CHECK_FALSE(is_ipv4("10.0.0.1 "));
  CHECK_FALSE(is_ipv4("10.0.0.1; reboot"));
  CHECK_FALSE(is_ipv4("+1.0.0.1"));
  CHECK_FALSE(is_ipv4(""));
}

TEST_CASE("is_ipv6 follows the RFC 4291 text form", "[util][net_address]") {
  CHECK(is_ipv6("fd00::1"));
  CHECK(is_ipv6("::1"));
  CHECK(is_ipv6("::"));
  CHECK(is_ipv6("2001:db8:0:0:0:0:0:1"));
  CHECK(is_ipv6("::ffff:10.0.0.1"));
  CHECK(is_ipv6("FD00:ABCD::"));
  CHECK_FALSE(is_ipv6("fd00::1::2"));
  CHECK_FALSE(is_ipv6("::::"));
  CHECK_FALSE(is_ipv6("1:2:3:4:5:6:7:8:9"));
  CHECK_FALSE(is_ipv6("1:2:3:4:5:6:7"));
  CHECK_FALSE(is_ipv6("1:2:3:4:5:6:7::8"));
  CHECK_FALSE(is_ipv6("12345::1"));
  CHECK_FALSE(is_ipv6("fd00::g"));
  CHECK_FALSE(is_ipv6("fd00::1%eth0"));
  CHECK_FALSE(is_ipv6("[fd00::1]"));
  CHECK_FALSE(is_ipv6("::10.0.0.1:1"));
  CHECK_FALSE(is_ipv6("10.0.0.1"));
}

TEST_CASE("is_dns_name accepts RFC 1123 host names only", "[util][net_address]") {
  CHECK(is_dns_name("pg-1"));
  CHECK(is_dns_name("pg-1.example.com"));
  CHECK(is_dns_name("pg-1.example.com."));
  CHECK(is_dns_name("1host"));
  CHECK(is_dns_name("pg-1.2a"));
  CHECK_FALSE(is_dns_name("10.0.0.256"));
  CHECK_FALSE(is_dns_name("123"));
  CHECK_FALSE(is_dns_name("-oProxyCommand=reboot"));
  CHECK_FALSE(is_dns_name("pg-1-.example.com"));
  CHECK_FALSE(is_dns_name("pg_1"));
  CHECK_FALSE(is_dns_name("a..b"));
  CHECK_FALSE(is_dns_name("$(reboot)"));
  CHECK_FALSE(is_dns_name("`reboot`.example.com"));
  CHECK_FALSE(is_dns_name("host name"));
  CHECK_FALSE(is_dns_name(std::string(64, 'a')));
  CHECK(is_dns_name(std::string(63, 'a')));
  CHECK_FALSE(is_dns_name(""));
  CHECK_FALSE(is_dns_name("."));
}

TEST_CASE("host_port brackets an address with a colon, as URLs and Host headers need", "[util][net_address]") {
  CHECK(pgc::host_port("10.0.0.11", 8008) == "10.0.0.11:8008");
  CHECK(pgc::host_port("db1.example", 5432) == "db1.example:5432");
  CHECK(pgc::host_port("fd00::1", 9187) == "[fd00::1]:9187");
  CHECK(pgc::host_port("::ffff:10.0.0.1", 2379) == "[::ffff:10.0.0.1]:2379");
  CHECK(pgc::host_port("localhost", 0) == "localhost:0");
}
