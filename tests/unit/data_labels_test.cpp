// Label files (TSV / CSV, header or not, extra columns, quotes) and ImageFolder classes.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/fixtures.h"
#include "repq/data/labels.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::vector<data::LabelEntry> read(const std::string& text) {
  TempDir dir;
  write_bytes(dir.file("labels.txt"), text);
  return data::read_label_file(dir.file("labels.txt"));
}

TEST(DataLabels, TsvWithHeaderAndExtraColumns) {
  const auto e = read(
      "file\tclass_index\twnid\tname\tbytes\tsha256\n"
      "images/n01440764_tench.JPEG\t0\tn01440764\ttench\t100582\tabc\n"
      "images/n02966687_carpenter's_kit.JPEG\t478\tn02966687\tcarpenter's_kit\t1\tdef\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].file, "images/n01440764_tench.JPEG");
  EXPECT_EQ(e[0].class_index, 0);
  EXPECT_EQ(e[1].file, "images/n02966687_carpenter's_kit.JPEG");
  EXPECT_EQ(e[1].class_index, 478);
  EXPECT_EQ(e[1].line, 3);
}

TEST(DataLabels, CsvWithoutHeaderCrlfCommentsAndQuotes) {
  const auto e = read("# comment\r\na.png, 3\r\n\r\n\"b,c.png\",4,extra\r\n\"say \"\"hi\"\".png\",5\r\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].file, "a.png");
  EXPECT_EQ(e[0].class_index, 3);
  EXPECT_EQ(e[1].file, "b,c.png");
  EXPECT_EQ(e[1].class_index, 4);
  EXPECT_EQ(e[2].file, "say \"hi\".png");
}

TEST(DataLabels, MalformedLinesNameFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"file,class_index\na.png,x\n", ":2: class index 'x'"},
      {"a.png,1\nb.png\n", ":2: expected file,class_index"},
      {"a.png,1\nb.png,-2\n", ":2: class index '-2'"},
      {"a.png,1\na.png,2\n", ":2: 'a.png' is listed twice"},
      {"file,class_index\n", "no labels"},
      {"", "no labels"},
  };
  for (const auto& [text, want] : cases) {
    TempDir dir;
    const std::string path = dir.file("l.csv");
    write_bytes(path, text);
    try {
      data::read_label_file(path);
      ADD_FAILURE() << "no error for: " << text;
    } catch (const InputError& err) {
      const std::string msg = err.what();
      EXPECT_EQ(msg.rfind(path, 0), 0u) << msg;
      EXPECT_NE(msg.find(want), std::string::npos) << msg;
    }
  }
}

TEST(DataLabels, ImageFolderClassesSorted) {
  TempDir dir;
  for (const char* c : {"zebra", "ant", "Bee", ".hidden"}) std::filesystem::create_directory(dir.path() / c);
  write_bytes(dir.file("stray.png"), "x");
  EXPECT_EQ(data::image_folder_classes(dir.path().string()), (std::vector<std::string>{"Bee", "ant", "zebra"}));
  TempDir empty;
  EXPECT_THROW(data::image_folder_classes(empty.path().string()), InputError);
}

TEST(DataLabels, SharedImagenetSampleLabels) {
  REPQ_REQUIRE_SHARED();
  const auto e = data::read_label_file(shared_dir() + "/data/imagenet_sample/labels.tsv");
  ASSERT_EQ(e.size(), 500u);
  EXPECT_EQ(e[0].file, "images/n01440764_tench.JPEG");
  EXPECT_EQ(e[0].class_index, 0);
  EXPECT_EQ(e.back().class_index, 998);
}

}  // namespace
}  // namespace repq::test
