#include "util/net_address.hpp"

#include <cstddef>

namespace pgc {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Counts the hex groups of one side of "::" (a trailing dotted quad counts as two); -1 if malformed.
int hex_groups(std::string_view side, bool may_end_in_ipv4) {
  if (side.empty()) return 0;
  int groups = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = side.find(':', start);
    std::string_view group = side.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    if (colon == std::string_view::npos && may_end_in_ipv4 && group.find('.') != std::string_view::npos)
      return is_ipv4(group) ? groups + 2 : -1;
    if (group.empty() || group.size() > 4) return -1;
    for (char c : group)
      if (!is_hex(c)) return -1;
    ++groups;
    if (colon == std::string_view::npos) return groups;
    start = colon + 1;
  }
}

}  // namespace

bool is_ipv4(std::string_view text) {
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = text.find('.', start);
    std::string_view part = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 3) return false;
    int value = 0;
    for (char c : part) {
      if (!is_digit(c)) return false;
      value = value * 10 + (c - '0');
    }
    if (value > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

bool is_ipv6(std::string_view text) {
  if (text.find(':') == std::string_view::npos) return false;
  std::size_t gap = text.find("::");
  if (gap == std::string_view::npos) return hex_groups(text, true) == 8;
  if (text.find("::", gap + 1) != std::string_view::npos) return false;
  int left = hex_groups(text.substr(0, gap), false);
  int right = hex_groups(text.substr(gap + 2), true);
  return left >= 0 && right >= 0 && left + right <= 7;
}

bool is_dns_name(std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.empty() || text.size() > 253) return false;
  // An all-numeric last label is no host name: "10.0.0.256" is a mistyped address.
  std::string_view last = text.substr(text.rfind('.') == std::string_view::npos ? 0 : text.rfind('.') + 1);
  bool numeric = true;
  for (char c : last) numeric = numeric && is_digit(c);
  if (numeric) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = text.find('.', start);
    std::string_view label = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_alnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string host_port(std::string_view address, int port) {
  std::string host(address);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

}  // namespace pgc
