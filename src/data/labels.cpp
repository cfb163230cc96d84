// Label files and ImageFolder class lists.
#include "repq/data/labels.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <string_view>

#include "repq/common/atomic_file.h"
#include "repq/error.h"

namespace repq::data {

namespace fs = std::filesystem;

namespace {

// Splits one line into fields; a field that starts with '"' runs to the closing quote ("" is a
// quote inside it).
std::vector<std::string> split_fields(std::string_view line, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += line[i++];
      }
      while (i < line.size() && line[i] != sep) ++i;
    } else {
      const size_t end = line.find(sep, i);
      field = std::string(line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
      i = end == std::string_view::npos ? line.size() : end;
    }
    out.push_back(std::move(field));
    if (i >= line.size()) break;
    ++i;  // the separator
  }
  return out;
}

std::string trim(std::string s) {
  const auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && sp(s.back())) s.pop_back();
  size_t b = 0;
  while (b < s.size() && sp(s[b])) ++b;
  return s.substr(b);
}

bool parse_index(const std::string& s, int64_t& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::vector<LabelEntry> read_label_file(const std::string& path) {
  const std::string text = read_file(path, uint64_t{1} << 30);
  std::vector<LabelEntry> entries;
  std::set<std::string> seen;
  char sep = 0;
  bool first = true;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // UTF-8 BOM
    if (line.find_first_not_of(" \t") == std::string_view::npos || line.front() == '#') continue;
    if (sep == 0) sep = line.find('\t') != std::string_view::npos ? '\t' : ',';
    std::vector<std::string> f = split_fields(line, sep);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    int64_t index = -1;
    const bool ok = f.size() >= 2 && parse_index(trim(f[1]), index);
    if (first && !ok) {  // a header line
      first = false;
      continue;
    }
    first = false;
    if (f.size() < 2)
      throw InputError(where + "expected file" + (sep == '\t' ? "<tab>" : ",") + "class_index");
    if (!ok || index < 0)
      throw InputError(where + "class index '" + trim(f[1]) + "' is not a non-negative integer");
    std::string file = sep == '\t' ? f[0] : trim(f[0]);
    if (file.empty()) throw InputError(where + "empty file name");
    if (!seen.insert(file).second) throw InputError(where + "'" + file + "' is listed twice");
    entries.push_back({std::move(file), index, line_no});
  }
  if (entries.empty()) throw InputError(path + ": no labels (expected lines of file,class_index)");
  return entries;
}

std::vector<std::string> image_folder_classes(const std::string& root) {
  std::error_code ec;
  std::vector<std::string> classes;
  fs::directory_iterator it(root, ec);
  if (ec) throw InputError(root + ": cannot list: " + ec.message());
  for (const auto& e : it) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (e.is_directory(ec)) classes.push_back(name);
  }
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) throw InputError(root + ": no class subfolders (ImageFolder layout expected: root/<class>/<image>)");
  return classes;
}

}  // namespace repq::data
