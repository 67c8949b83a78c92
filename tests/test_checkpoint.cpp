#include "hg/io/checkpoint.h"
#include "hg/io/import_pytorch.h"
#include "hg/io/torch_file.h"

#include "test_util.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using hg::io::CheckpointFormat;

namespace {

const std::string kFixtures = std::string(HG_TEST_DATA) + "/fixtures/";

struct FixtureCase {
  std::string checkpoint, io;
  CheckpointFormat format;
  int64_t stacks, features, residuals, joints, depth;
};

std::ostream& operator<<(std::ostream& os, const FixtureCase& c) {
  return os << c.checkpoint;
}

std::string temp_path(const std::string& name) {
  return (hg::test::scratch_dir() / name).string();
}

at::Tensor io_tensor(const std::string& path, const std::string& key) {
  const auto root = hg::io::read_torch_file(path);
  const auto* v = root->find(key);
  EXPECT_NE(v, nullptr) << path << " lacks " << key;
  return v->tensor;
}

using hg::test::error_of;

class Fixtures : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(Fixtures, ImportedModelReproducesTheReferenceOutput) {
  const auto c = GetParam();
  auto loaded = hg::io::load_model(kFixtures + c.checkpoint);
  EXPECT_EQ(loaded.format, c.format);
  const auto& o = loaded.model->options;
  EXPECT_EQ(o.stacks(), c.stacks);
  EXPECT_EQ(o.features(), c.features);
  EXPECT_EQ(o.residuals(), c.residuals);
  EXPECT_EQ(o.joints(), c.joints);
  EXPECT_EQ(o.depth(), c.depth);
  const auto input = io_tensor(kFixtures + c.io, "input");
  const auto reference = io_tensor(kFixtures + c.io, "output");
  torch::NoGradGuard guard;
  const auto output = loaded.model->forward(input);
  ASSERT_EQ(output.sizes(), reference.sizes());
  const double err = (output - reference).abs().max().item<double>();
  const double scale = reference.abs().max().item<double>();
  EXPECT_LE(err, 1e-4 * scale) << "max |Δ| " << err << " vs max |ref| " << scale;
}

TEST_P(Fixtures, NativeRoundTripIsBitExact) {
  const auto c = GetParam();
  auto loaded = hg::io::load_model(kFixtures + c.checkpoint);
  const auto path = temp_path(fs::path(c.checkpoint).filename().string() + ".hg");
  hg::io::save_model(path, *loaded.model, {{"note", "round trip"}});
  auto again = hg::io::load_model(path);
  EXPECT_EQ(again.format, CheckpointFormat::kNative);
  EXPECT_TRUE(again.model->options == loaded.model->options);
  EXPECT_EQ(again.meta["note"], "round trip");
  const auto a = hg::io::state_of(*loaded.model), b = hg::io::state_of(*again.model);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
  torch::NoGradGuard guard;
  const auto input = io_tensor(kFixtures + c.io, "input");
  EXPECT_TRUE(torch::equal(loaded.model->forward(input), again.model->forward(input)));
  fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(
    All, Fixtures,
    ::testing::Values(FixtureCase{"posenet_s2_f64_checkpoint.pt", "posenet_s2_f64_checkpoint.io.pt",
                                  CheckpointFormat::kPoseNet, 2, 64, 1, 16, 4},
                      FixtureCase{"posenet_s1_f32_state_dict.pt", "posenet_s1_f32_state_dict.io.pt",
                                  CheckpointFormat::kPoseNet, 1, 32, 1, 16, 4},
                      FixtureCase{"bearpaw_hg_s2_b1_f64.pth.tar", "bearpaw_hg_s2_b1_f64.io.pt",
                                  CheckpointFormat::kBearpaw, 2, 64, 1, 16, 4},
                      FixtureCase{"gen/posenet_s3_f32_j11_state_dict.pt",
                                  "gen/posenet_s3_f32_j11_state_dict.io.pt",
                                  CheckpointFormat::kPoseNet, 3, 32, 1, 11, 4},
                      FixtureCase{"gen/posenet_s1_f16_d3_checkpoint.pt",
                                  "gen/posenet_s1_f16_d3_checkpoint.io.pt",
                                  CheckpointFormat::kPoseNet, 1, 16, 1, 16, 3},
                      FixtureCase{"gen/bearpaw_s1_b2_f32.pth.tar", "gen/bearpaw_s1_b2_f32.io.pt",
                                  CheckpointFormat::kBearpaw, 1, 32, 2, 16, 4},
                      FixtureCase{"gen/bearpaw_s3_b1_f16_j7.pth.tar",
                                  "gen/bearpaw_s3_b1_f16_j7.io.pt", CheckpointFormat::kBearpaw, 3,
                                  16, 1, 7, 4}),
    [](const ::testing::TestParamInfo<FixtureCase>& info) {
      std::string name = fs::path(info.param.checkpoint).stem().stem().string();
      for (char& ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return name;
    });

// ---- malformed inputs -------------------------------------------------------------------------

std::map<std::string, at::Tensor> posenet_state() {
  const auto root = hg::io::read_torch_file(kFixtures + "posenet_s1_f32_state_dict.pt");
  return hg::io::tensor_entries(*root);
}

TEST(CheckpointErrors, TruncatedFileIsReported) {
  const auto src = kFixtures + "posenet_s1_f32_state_dict.pt";
  const auto path = temp_path("truncated.pt");
  fs::copy_file(src, path, fs::copy_options::overwrite_existing);
  fs::resize_file(path, fs::file_size(src) / 2);
  const auto msg = error_of([&] { hg::io::load_model(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(CheckpointErrors, MissingFileIsReported) {
  const auto msg = error_of([&] { hg::io::load_model("/nonexistent/model.pt"); });
  EXPECT_NE(msg.find("cannot read /nonexistent/model.pt"), std::string::npos) << msg;
}

TEST(CheckpointErrors, MissingKeyIsNamed) {
  auto state = posenet_state();
  state.erase("hgs.0.0.up1.conv2.conv.weight");
  const auto path = temp_path("missing_key.pt");
  hg::io::write_tensor_dict(path, state);
  const auto msg = error_of([&] { hg::io::load_model(path); });
  EXPECT_NE(msg.find("no tensor for 'hourglasses.0.up1.0.conv2.weight'"), std::string::npos) << msg;

  state.erase("outs.0.conv.weight");
  hg::io::write_tensor_dict(path, state);
  const auto msg2 = error_of([&] { hg::io::load_model(path); });
  EXPECT_NE(msg2.find("lacks 'outs.0.conv.weight'"), std::string::npos) << msg2;
}

TEST(CheckpointErrors, WrongShapeIsNamed) {
  auto state = posenet_state();
  state["hgs.0.0.low1.conv2.conv.weight"] = torch::zeros({16, 16, 5, 5});
  const auto path = temp_path("wrong_shape.pt");
  hg::io::write_tensor_dict(path, state);
  const auto msg = error_of([&] { hg::io::load_model(path); });
  EXPECT_NE(msg.find("'hourglasses.0.low1.0.conv2.weight' has shape [16, 16, 5, 5]"),
            std::string::npos)
      << msg;
}

TEST(CheckpointErrors, UnexpectedTensorIsNamed) {
  auto state = posenet_state();
  state["hgs.0.0.extra.weight"] = torch::zeros({3});
  const auto path = temp_path("unexpected.pt");
  hg::io::write_tensor_dict(path, state);
  const auto msg = error_of([&] { hg::io::load_model(path); });
  EXPECT_NE(msg.find("unexpected tensor 'hgs.0.0.extra.weight'"), std::string::npos) << msg;
}

TEST(CheckpointErrors, NonCheckpointFilesAreRejected) {
  const auto text = temp_path("notes.txt");
  std::ofstream(text) << "this is not a checkpoint\n";
  EXPECT_NE(error_of([&] { hg::io::load_model(text); }).find("not a PyTorch checkpoint"),
            std::string::npos);

  // A torch file holding a dict of unrelated tensors.
  const auto other = temp_path("other.pt");
  hg::io::write_tensor_dict(other, {{"foo.weight", torch::zeros({2})}});
  const auto msg = error_of([&] { hg::io::load_model(other); });
  EXPECT_NE(msg.find("not a stacked hourglass state dict"), std::string::npos) << msg;
  EXPECT_NE(msg.find("foo.weight"), std::string::npos) << msg;

  // A zip file without a pickle.
  const auto zip = temp_path("plain.zip");
  {
    caffe2::serialize::PyTorchStreamWriter writer(zip);
    writer.writeRecord("readme.txt", "hello", 5);
  }
  EXPECT_NE(error_of([&] { hg::io::load_model(zip); }).find("no data.pkl"), std::string::npos);
}

TEST(CheckpointErrors, PickleNamingAForeignGlobalIsRefusedNotCalled) {
  // pickle of os.system("touch MARKER"): GLOBAL 'os system', a tuple argument, REDUCE.
  const auto marker = temp_path("pwned");
  const std::string cmd = "touch " + marker;
  std::string pkl =
      "\x80\x02"
      "cos\nsystem\n";
  pkl += 'X';
  const uint32_t n = static_cast<uint32_t>(cmd.size());
  pkl.append(reinterpret_cast<const char*>(&n), 4);
  pkl += cmd;
  pkl += "\x85R.";
  const auto path = temp_path("evil.pt");
  {
    caffe2::serialize::PyTorchStreamWriter writer(path);
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
  }
  const auto msg = error_of([&] { hg::io::read_torch_file(path); });
  EXPECT_NE(msg.find("global 'os.system'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(marker));
}

TEST(CheckpointErrors, NativeCheckpointWithBadConfigIsReported) {
  auto root = hg::io::PyValue::new_dict();
  root->set("format", hg::io::PyValue::of(std::string("hourglass")))
      .set("version", hg::io::PyValue::of(int64_t{1}))
      .set("config", hg::io::PyValue::of(std::string("{\"stacks\": 2, \"wings\": 3}")))
      .set("meta", hg::io::PyValue::of(std::string("{}")))
      .set("state_dict", hg::io::PyValue::new_dict());
  const auto path = temp_path("bad_config.hg");
  hg::io::write_torch_file(path, *root);
  const auto msg = error_of([&] { hg::io::load_model(path); });
  EXPECT_NE(msg.find("unknown architecture key 'wings'"), std::string::npos) << msg;
}

TEST(Checkpoint, WritesAreAtomic) {
  // A failed write (unwritable directory) leaves no file and names the path.
  const auto msg = error_of([] {
    hg::model::StackedHourglass net(hg::model::StackedHourglassOptions().stacks(1).features(8));
    hg::io::save_model("/nonexistent-dir/x.hg", *net);
  });
  EXPECT_NE(msg.find("/nonexistent-dir/x.hg"), std::string::npos) << msg;
  // An existing checkpoint is replaced whole, and no temporary file is left beside it.
  const auto path = temp_path("atomic.hg");
  hg::model::StackedHourglass a(hg::model::StackedHourglassOptions().stacks(1).features(8));
  hg::model::StackedHourglass b(hg::model::StackedHourglassOptions().stacks(2).features(8));
  hg::io::save_model(path, *a);
  hg::io::save_model(path, *b);
  EXPECT_EQ(hg::io::load_model(path).model->options.stacks(), 2);
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
}

}  // namespace

namespace {

TEST(TorchFile, ValuesRoundTripThroughTheWriterAndReader) {
  using hg::io::PyValue;
  auto root = PyValue::new_dict();
  const auto strided = torch::arange(12, torch::kFloat).reshape({3, 4}).t();  // non-contiguous
  root->set("none", PyValue::none())
      .set("yes", PyValue::of(true))
      .set("small", PyValue::of(int64_t{-7}))
      .set("big", PyValue::of(int64_t{1} << 40))
      .set("pi", PyValue::of(3.141592653589793))
      .set("name", PyValue::of(std::string("héllo")))
      .set("list", PyValue::new_list({PyValue::of(int64_t{1}), PyValue::of(std::string("two"))}))
      .set("strided", PyValue::of(strided))
      .set("long", PyValue::of(torch::tensor({int64_t{1} << 40, int64_t{-3}})))
      .set("half", PyValue::of(torch::ones({2, 2}, torch::kHalf)));
  const auto path = temp_path("values.pt");
  hg::io::write_torch_file(path, *root);
  const auto back = hg::io::read_torch_file(path);
  EXPECT_EQ(back->find("none")->kind, PyValue::Kind::kNone);
  EXPECT_TRUE(back->find("yes")->boolean);
  EXPECT_EQ(back->find("small")->integer, -7);
  EXPECT_EQ(back->find("big")->integer, int64_t{1} << 40);
  EXPECT_EQ(back->find("pi")->real, 3.141592653589793);
  EXPECT_EQ(back->find("name")->text, "héllo");
  ASSERT_EQ(back->find("list")->items.size(), 2u);
  EXPECT_EQ(back->find("list")->items[1]->text, "two");
  EXPECT_TRUE(torch::equal(back->find("strided")->tensor, strided));
  EXPECT_TRUE(
      torch::equal(back->find("long")->tensor, torch::tensor({int64_t{1} << 40, int64_t{-3}})));
  EXPECT_EQ(back->find("half")->tensor.scalar_type(), torch::kHalf);
}

TEST(TorchFile, DeferredTensorsHaveTheirShapeNowAndTheirDataOnDemand) {
  using hg::io::PyValue;
  auto root = PyValue::new_dict();
  const auto strided = torch::arange(12, torch::kFloat).reshape({3, 4}).t();  // non-contiguous
  const auto base = torch::arange(10, torch::kDouble);
  root->set("strided", PyValue::of(strided)).set("tail", PyValue::of(base.slice(0, 4)));
  const auto path = temp_path("deferred.pt");
  hg::io::write_torch_file(path, *root);
  const auto back = hg::io::read_torch_file(path, hg::io::TensorData::kDeferred);
  const auto& lazy = *back->find("strided");
  EXPECT_TRUE(lazy.tensor.is_meta());  // nothing read yet
  EXPECT_EQ(lazy.tensor.sizes(), strided.sizes());
  EXPECT_TRUE(torch::equal(hg::io::load_tensor(lazy), strided));
  EXPECT_TRUE(torch::equal(hg::io::load_tensor(*back->find("tail")), base.slice(0, 4)));
  EXPECT_TRUE(torch::equal(hg::io::tensor_entries(*back).at("strided"), strided));
}

}  // namespace
