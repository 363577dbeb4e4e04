#include "util/json_pointer.hpp"

namespace pgc {

std::string pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string pointer_append(std::string_view pointer, std::string_view key) {
  return std::string(pointer) + "/" + pointer_token(key);
}

std::string pointer_dotted(std::string_view pointer) {
  std::string out;
  for (std::size_t i = pointer.empty() || pointer[0] != '/' ? 0 : 1; i < pointer.size(); ++i) {
    char c = pointer[i];
    if (c == '/') {
      out += '.';
    } else if (c == '~' && i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
      out += pointer[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace pgc
