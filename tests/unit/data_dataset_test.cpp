// Datasets: listing, labels in every layout, .npy samples and batches, skip-bad, limit,
// batching determinism across thread counts, and the 500 shared ImageNet photos.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "data/fixtures.h"
#include "repq/data/dataset.h"
#include "repq/data/npy.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

namespace fs = std::filesystem;
using data::Dataset;
using data::DatasetOptions;

DatasetOptions small_options() {
  DatasetOptions o;
  o.preprocess.resize = 12;
  o.preprocess.crop_height = o.preprocess.crop_width = 10;
  o.warn = [](const std::string&) {};
  return o;
}

void write_png(const fs::path& p, int seed, int w = 16, int h = 14) {
  fs::create_directories(p.parent_path());
  write_bytes(p.string(), data::encode_png(pattern_image(w, h, 3, seed)));
}

std::vector<std::string> names(const Dataset& ds) {
  std::vector<std::string> out;
  for (const auto& s : ds.samples()) out.push_back(fs::path(s.path).lexically_relative(ds.root()).generic_string());
  return out;
}

TEST(DataDataset, FlatFolderSortedRecursiveUnlabelled) {
  TempDir dir;
  for (const char* f : {"b.png", "a.png", "sub/c.jpg", "a10.png", ".hidden.png", ".git/x.png"}) write_png(dir.path() / f, 1);
  write_bytes(dir.file("notes.txt"), "ignored");
  const Dataset ds = Dataset::open(dir.path().string(), small_options());
  EXPECT_EQ(names(ds), (std::vector<std::string>{"a.png", "a10.png", "b.png", "sub/c.jpg"}));
  EXPECT_FALSE(ds.labelled());
  data::BatchReader r(ds, 3);
  const auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->input.shape(), (Shape{3, 3, 10, 10}));
  EXPECT_EQ(b->labels, (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_EQ(r.next()->input.dim(0), 1);
  EXPECT_FALSE(r.next());
}

TEST(DataDataset, ImageFolderLabels) {
  TempDir dir;
  write_png(dir.path() / "dog/2.png", 1);
  write_png(dir.path() / "dog/1.png", 2);
  write_png(dir.path() / "cat/z.png", 3);
  write_png(dir.path() / "cat-x/a.png", 4);  // sorts after "cat" as a class, not inside it
  write_png(dir.path() / "stray.png", 5);    // not in a class folder: ignored
  DatasetOptions o = small_options();
  o.set_labels("folders");
  const Dataset ds = Dataset::open(dir.path().string(), o);
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"cat", "cat-x", "dog"}));
  EXPECT_EQ(names(ds), (std::vector<std::string>{"cat/z.png", "cat-x/a.png", "dog/1.png", "dog/2.png"}));
  std::vector<int64_t> labels;
  for (const auto& s : ds.samples()) labels.push_back(s.label);
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 1, 2, 2}));
}

TEST(DataDataset, LabelFileRelativeToItsFolderOrToTheData) {
  TempDir dir;
  write_png(dir.path() / "data/images/x.png", 1);
  write_png(dir.path() / "data/images/y's.png", 2);
  // Beside the data, paths relative to the label file.
  write_bytes(dir.file("data/labels.tsv"), "file\tclass_index\textra\nimages/y's.png\t7\tq\nimages/x.png\t3\tq\n");
  DatasetOptions o = small_options();
  o.set_labels(dir.file("data/labels.tsv"));
  const Dataset a = Dataset::open(dir.file("data"), o);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a.sample(0).label, 3);
  EXPECT_EQ(a.sample(1).label, 7);
  // Elsewhere, paths relative to the data folder.
  write_bytes(dir.file("labels.csv"), "x.png,1\ny's.png,2\n");
  o.set_labels(dir.file("labels.csv"));
  const Dataset b = Dataset::open(dir.file("data/images"), o);
  EXPECT_EQ(b.sample(0).label, 1);
  EXPECT_EQ(b.sample(1).label, 2);
}

TEST(DataDataset, UnlabelledSampleFailsOrIsSkipped) {
  TempDir dir;
  write_png(dir.path() / "a.png", 1);
  write_png(dir.path() / "b.png", 2);
  write_bytes(dir.file("l.csv"), "a.png,0\nmissing.png,1\n");
  DatasetOptions o = small_options();
  o.set_labels(dir.file("l.csv"));
  try {
    Dataset::open(dir.path().string(), o);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("b.png") + ": no label in " + dir.file("l.csv"));
  }
  std::vector<std::string> warnings;
  o.warn = [&](const std::string& m) { warnings.push_back(m); };
  o.skip_bad = true;
  const Dataset ds = Dataset::open(dir.path().string(), o);
  EXPECT_EQ(ds.size(), 1u);
  ASSERT_EQ(warnings.size(), 2u);  // the missing entry, the unlabelled file
  EXPECT_NE(warnings[0].find("1 of 2 entries name files that do not exist (first: missing.png)"), std::string::npos);
  EXPECT_NE(warnings[1].find("b.png: no label"), std::string::npos);
}

TEST(DataDataset, BadImagesFailNamingTheFileOrAreSkipped) {
  TempDir dir;
  for (int i = 0; i < 6; ++i) write_png(dir.path() / ("img" + std::to_string(i) + ".png"), i);
  write_bytes(dir.file("img2.png"), "");                       // zero bytes
  write_bytes(dir.file("img4.png"), png_bomb(50000, 50000));  // over the pixel limit
  DatasetOptions o = small_options();
  o.threads = 3;
  {
    const Dataset ds = Dataset::open(dir.path().string(), o);
    data::BatchReader r(ds, 4);
    try {
      r.next();
      ADD_FAILURE() << "no error";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()), dir.file("img2.png") + ": empty file");
    }
  }
  std::vector<std::string> warnings;
  o.warn = [&](const std::string& m) { warnings.push_back(m); };
  o.skip_bad = true;
  const Dataset ds = Dataset::open(dir.path().string(), o);
  data::BatchReader r(ds, 3);
  std::vector<std::string> got;
  std::vector<int64_t> sizes;
  while (auto b = r.next()) {
    sizes.push_back(b->input.dim(0));
    for (const auto& n : b->names) got.push_back(fs::path(n).filename().string());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"img0.png", "img1.png", "img3.png", "img5.png"}));
  EXPECT_EQ(sizes, (std::vector<int64_t>{3, 1}));  // batches are refilled past skipped files
  EXPECT_EQ(r.skipped(), 2);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0], dir.file("img2.png") + ": empty file (skipped)");
  EXPECT_NE(warnings[1].find(dir.file("img4.png") + ": image is 50000x50000"), std::string::npos);
}

TEST(DataDataset, BatchesIdenticalWithOneOrFourThreads) {
  TempDir dir;
  for (int i = 0; i < 11; ++i) write_png(dir.path() / ("f" + std::to_string(100 + i) + ".png"), i, 20 + i, 30 - i);
  std::vector<std::vector<Tensor>> runs;
  std::vector<std::vector<std::string>> run_names;
  for (int threads : {1, 4}) {
    DatasetOptions o = small_options();
    o.threads = threads;
    const Dataset ds = Dataset::open(dir.path().string(), o);
    data::BatchReader r(ds, 4);
    runs.emplace_back();
    run_names.emplace_back();
    while (auto b = r.next()) {
      runs.back().push_back(b->input);
      run_names.back().insert(run_names.back().end(), b->names.begin(), b->names.end());
    }
  }
  ASSERT_EQ(runs[0].size(), 3u);
  ASSERT_EQ(runs[1].size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(runs[0][i].equals(runs[1][i])) << i;
  EXPECT_EQ(run_names[0], run_names[1]);
  EXPECT_EQ(runs[0][2].dim(0), 3);
  // Each sample equals loading it alone.
  const Dataset ds = Dataset::open(dir.path().string(), small_options());
  const Tensor one = ds.load(5);
  EXPECT_EQ(std::memcmp(one.raw(), runs[0][1].raw() + one.nbytes(), one.nbytes()), 0);
  // Batch size 1 on 4 threads (decoded ahead) gives the same sequence.
  DatasetOptions o = small_options();
  o.threads = 4;
  const Dataset ds4 = Dataset::open(dir.path().string(), o);
  data::BatchReader r1(ds4, 1);
  for (size_t i = 0; i < 11; ++i) {
    const auto b = r1.next();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->indices, (std::vector<size_t>{i}));
    EXPECT_EQ(std::memcmp(b->input.raw(), runs[0][i / 4].raw() + (i % 4) * one.nbytes(), one.nbytes()), 0) << i;
  }
  EXPECT_FALSE(r1.next());
  r1.reset();
  EXPECT_EQ(r1.next()->indices, (std::vector<size_t>{0}));
}

TEST(DataDataset, LimitKeepsFirstSamples) {
  TempDir dir;
  for (int i = 0; i < 5; ++i) write_png(dir.path() / ("p" + std::to_string(i) + ".png"), i);
  DatasetOptions o = small_options();
  o.limit = 2;
  EXPECT_EQ(names(Dataset::open(dir.path().string(), o)), (std::vector<std::string>{"p0.png", "p1.png"}));
}

TEST(DataDataset, NpySamplesAndBatches) {
  TempDir dir;
  const Tensor s0 = Tensor::from_vector<float>({3, 2, 2}, random_floats(12, 1));
  const Tensor batch = Tensor::from_vector<float>({2, 3, 2, 2}, random_floats(24, 2));
  data::write_npy(dir.file("a.npy"), s0);
  data::write_npy(dir.file("b.npy"), batch);
  write_bytes(dir.file("c.npy"), data::encode_npy(Tensor::from_vector<uint8_t>({3, 2, 2}, std::vector<uint8_t>(12, 200))));
  DatasetOptions o = small_options();
  const Dataset ds = Dataset::open(dir.path().string(), o);
  ASSERT_TRUE(ds.is_npy());
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.sample(1).name(), dir.file("b.npy") + "[0]");
  EXPECT_EQ(ds.sample(2).name(), dir.file("b.npy") + "[1]");
  const data::Batch all = data::load_all(ds);
  ASSERT_EQ(all.input.shape(), (Shape{4, 3, 2, 2}));
  const float* v = all.input.data<float>();
  EXPECT_EQ(std::memcmp(v, s0.raw(), 48), 0);
  EXPECT_EQ(std::memcmp(v + 12, batch.raw(), 96), 0);
  EXPECT_EQ(v[36], 200.0f);  // uint8 values kept as they are

  // Wrong rank: an error naming the file, or skipped.
  data::write_npy(dir.file("d.npy"), Tensor(DType::kFloat32, {5}));
  EXPECT_THROW(Dataset::open(dir.path().string(), o), InputError);
  o.skip_bad = true;
  EXPECT_EQ(Dataset::open(dir.path().string(), o).size(), 4u);
}

TEST(DataDataset, ShapeMismatchInABatch) {
  TempDir dir;
  write_png(dir.path() / "a.png", 1, 10, 10);
  write_png(dir.path() / "b.png", 2, 12, 10);
  DatasetOptions o = small_options();
  o.preprocess = data::Preprocess::from_preset("none");
  const Dataset ds = Dataset::open(dir.path().string(), o);
  data::BatchReader two(ds, 2);
  try {
    two.next();
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir.file("b.png") + ": sample shape [3,10,12] differs from [3,10,10]", 0), 0u)
        << e.what();
  }
  data::BatchReader one(ds, 1);
  EXPECT_EQ(one.next()->input.shape(), (Shape{1, 3, 10, 10}));
  EXPECT_EQ(one.next()->input.shape(), (Shape{1, 3, 10, 12}));
}

TEST(DataDataset, OpenErrors) {
  TempDir dir;
  EXPECT_THROW(Dataset::open(dir.file("nope"), small_options()), InputError);
  EXPECT_THROW(Dataset::open(dir.path().string(), small_options()), InputError);  // empty
  write_png(dir.path() / "a.png", 1);
  data::write_npy(dir.file("b.npy"), Tensor(DType::kFloat32, {3, 2, 2}));
  EXPECT_THROW(Dataset::open(dir.path().string(), small_options()), InputError);  // mixed
  EXPECT_EQ(Dataset::open(dir.file("a.png"), small_options()).size(), 1u);         // single file
  EXPECT_THROW(data::BatchReader(Dataset::open(dir.file("a.png"), small_options()), 0), InputError);
}

TEST(DataDataset, SlowImagenetSample500WithLabelsTsv) {
  REPQ_REQUIRE_SHARED();
  const std::string root = shared_dir() + "/data/imagenet_sample";
  DatasetOptions o;
  o.set_labels(root + "/labels.tsv");
  o.threads = 2;
  const Dataset ds = Dataset::open(root, o);
  ASSERT_EQ(ds.size(), 500u);
  EXPECT_EQ(fs::path(ds.sample(0).path).filename().string(), "n01440764_tench.JPEG");
  EXPECT_EQ(ds.sample(0).label, 0);
  EXPECT_EQ(ds.sample(499).label, 998);
  data::BatchReader r(ds, 50);
  size_t count = 0;
  // sum over all output floats i of bits(i) * (i * 2654435761 + 1), mod 2^64
  uint64_t hash = 0, index = 0;
  double secs = 0;  // in next() only
  while (true) {
    const auto t0 = std::chrono::steady_clock::now();
    auto b = r.next();
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!b) break;
    EXPECT_EQ(b->input.shape(), (Shape{static_cast<int64_t>(b->labels.size()), 3, 224, 224}));
    for (size_t k = 0; k < b->labels.size(); ++k) EXPECT_EQ(b->labels[k], static_cast<int64_t>(2 * (count + k)));
    count += b->labels.size();
    for (float v : b->input.span<float>()) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      hash += bits * (index++ * 2654435761u + 1);
    }
  }
  EXPECT_EQ(count, 500u);
  EXPECT_EQ(r.skipped(), 0);
  // The same hash of PIL 9.4 (Debian python3-pil, libjpeg-turbo 2.1.5) + numpy float32 doing
  // convert("RGB"), resize((round(256 * long / short), 256), BILINEAR), crop at (W-224)//2,
  // /255, (x - mean) / std on these 500 files: every value is bit-identical.
  EXPECT_EQ(hash, 0x3af6b6fdff1d015bull) << "preprocessed pixels differ from PIL's";
  std::cout << "[ imagenet_sample ] 500 images decoded + preprocessed on 2 threads in " << secs << " s ("
            << 500 / secs << " images/s)\n";
}

TEST(DataDataset, FirstRowsCopiesTheLeadingRowsAndRefusesBadCounts) {
  const Tensor t = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  const Tensor two = data::first_rows(t, 2);
  EXPECT_EQ(two.shape(), (Shape{2, 2}));
  EXPECT_EQ(std::vector<float>(two.span<float>().begin(), two.span<float>().end()),
            (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(data::first_rows(t, 3).equals(t));
  EXPECT_THROW(data::first_rows(t, 0), InputError);
  EXPECT_THROW(data::first_rows(t, 4), InputError);
  EXPECT_THROW(data::first_rows(Tensor::scalar(1.0f), 1), InputError);
}

}  // namespace
}  // namespace repq::test
