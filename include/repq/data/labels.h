// Class labels: a TSV/CSV label file, or the ImageFolder layout (one subfolder per class).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace repq::data {

struct LabelEntry {
  std::string file;     // as written in the label file (a relative or absolute path)
  int64_t class_index;  // >= 0
  int line;             // 1-based line number, for messages
};

// Reads `file<sep>class_index[<sep>more columns...]` lines. The separator is a tab when the
// first non-blank line holds one, else a comma; double-quoted CSV fields ("a,b.jpg") are
// understood. A first line whose second field is not an integer is a header and is skipped.
// Blank lines and lines starting with '#' are ignored; extra columns are ignored.
// Throws InputError("<path>:<line>: problem") for malformed lines, duplicate files or a file
// without entries.
std::vector<LabelEntry> read_label_file(const std::string& path);

// ImageFolder classes: the names of the subfolders of `root` (hidden ones excluded), sorted
// bytewise; a class's index is its position.
std::vector<std::string> image_folder_classes(const std::string& root);

}  // namespace repq::data
