// The decoder table of docs/prediction.md and docs/benchmarks.md: every decoding and test-time option of the predictor on
// held-out synthetic people, scored by PCKh@0.5 and @0.1 per stack and by COCO keypoint AP (OKS),
// with what each costs per person, all measured in one run.
//
//   hg_decoder_table [MODEL.hg ...] [--oracle] [--samples 500] [--seed 3] [--chunk 25]
//                    [--threads 0] [--json F]
//
// --oracle adds two stand-ins for the network that output each crop's (and its mirror's)
// training targets, unbiased and rounded (the demo's σ 2 at 128 px): the decoders' own error on
// perfect heatmaps of either encoding, whatever a model learnt.
//
// Per model, the options run in turns on chunks of `--chunk` crops (each chunk through every
// option before the next chunk), so that load on a shared machine slows all of them alike; the
// time is Predictor::predict_crops's (network, flip test, decoding, inverse transform), the crops
// are made once beforehand. Decoding alone is timed on the same chunks' heatmaps.
//
// OKS AP: each sample is one image with one truth person (its annotated joints: v = 2 visible, 1
// occluded; area = the box of its present joints, w·h) and one detection (the crop's last-stack
// joints, score = eval::person_score with box score 1), scored by eval::evaluate_coco_keypoints
// with MMPose's OKS sigmas for the 16 MPII joints (its mpii.py "adapted from COCO").
#include "hg/data/sample.h"
#include "hg/data/synthetic.h"
#include "hg/eval/coco_eval.h"
#include "hg/eval/pck.h"
#include "hg/infer/decode.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/runtime.h"

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Variant {
  std::string name;
  bool flip = false, flip_shift = false;
  hg::infer::PeakDecoder decoder = hg::infer::PeakDecoder::kQuarterOffset;
};

const std::vector<Variant> kVariants = {
    {"argmax + 1/4 px (default decoder)", false, false, hg::infer::PeakDecoder::kQuarterOffset},
    {"DARK (--dark)", false, false, hg::infer::PeakDecoder::kDark},
    {"flip test", true, false, hg::infer::PeakDecoder::kQuarterOffset},
    {"flip test + 1 px shift (--flip-shift)", true, true, hg::infer::PeakDecoder::kQuarterOffset},
    {"flip test + DARK", true, false, hg::infer::PeakDecoder::kDark},
};

// MMPose's configs/_base_/datasets/mpii.py, MPII joint order.
const std::vector<double> kMpiiSigmas = {0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026,
                                         0.026, 0.026, 0.062, 0.072, 0.179, 0.179, 0.072, 0.062};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

hg::eval::CocoTruth synthetic_truth(const std::vector<hg::data::Annotation>& people) {
  hg::eval::CocoTruth t;
  t.category_ids = {1};
  t.sigmas = kMpiiSigmas;
  for (size_t i = 0; i < people.size(); ++i) {
    const auto id = static_cast<int64_t>(i + 1);
    t.image_ids.push_back(id);
    t.image_files.push_back("");
    hg::eval::CocoTruthPerson p;
    p.id = id;
    p.image_id = id;
    p.category_id = 1;
    double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
    for (const auto& k : people[i].joints) {
      p.keypoints.insert(p.keypoints.end(), {k.present ? k.pos.x : 0, k.present ? k.pos.y : 0,
                                             k.visible   ? 2.0
                                             : k.present ? 1.0
                                                         : 0.0});
      if (!k.present) continue;
      ++p.num_keypoints;
      x0 = std::min(x0, k.pos.x), y0 = std::min(y0, k.pos.y);
      x1 = std::max(x1, k.pos.x), y1 = std::max(y1, k.pos.y);
    }
    if (p.num_keypoints > 0) {
      p.bbox = {x0, y0, x1 - x0, y1 - y0};
      p.area = (x1 - x0) * (y1 - y0);
    }
    t.people.push_back(std::move(p));
  }
  return t;
}

// What produces the heatmaps: a trained model, or an oracle that renders each crop's training
// targets (a perfect network for that target encoding). `first` tells an oracle which sample
// the first row of its input is.
struct Source {
  std::string name;
  hg::infer::Backend net;
  hg::data::JointSet joints;
  int res = 128;
  hg::data::PixelGrid grid = hg::data::PixelGrid::kExact;
  int stacks = 1;
};

Source model_source(const std::string& weights, int threads) {
  auto loaded = hg::io::load_model(weights);
  Source s{weights,
           {},
           hg::infer::model_joints(loaded, weights),
           hg::infer::model_input_size(loaded),
           hg::infer::model_grid(loaded),
           static_cast<int>(loaded.model->options.stacks())};
  hg::infer::BackendOptions backend;
  backend.engine.threads = threads;
  s.net = hg::infer::make_backend(loaded.model, backend, s.res);
  return s;
}

// The targets of every sample's crop and of its mirror (what the flip test feeds the network)
// at `res`, σ `sigma`, with `encoding`; the backend hands them out for the rows it is given:
// rows 0..n-1 the crops from sample *first on, rows n..2n-1 (flip test) their mirrors.
Source oracle_source(const hg::data::Dataset& data, int samples, int res, double sigma,
                     hg::data::TargetEncoding encoding, int chunk, const int* first) {
  hg::data::SampleOptions so;
  so.res = res;
  so.sigma = sigma;
  so.target_encoding = encoding;
  const int side = so.heatmap_side();
  const int j = data.joints().size();
  auto maps = std::make_shared<std::vector<at::Tensor>>(2);
  for (int mirrored = 0; mirrored < 2; ++mirrored) {
    (*maps)[mirrored] = torch::zeros({samples, 1, j, side, side});
    hg::data::AugmentParams aug;
    aug.flip = mirrored == 1;
    for (int i = 0; i < samples; ++i) {
      const auto s = hg::data::make_sample(data, static_cast<size_t>(i), so, aug);
      for (int k = 0; k < j; ++k)
        std::memcpy((*maps)[mirrored][i][0][k].data_ptr<float>(), s.heatmaps[k].ptr<float>(),
                    sizeof(float) * side * side);
    }
  }
  auto net = [maps, first, chunk, samples](const at::Tensor& input) {
    // A chunk of n crops comes alone or followed by its n mirrors (the flip test).
    const int64_t rows = input.size(0), n = std::min(chunk, samples - *first);
    const auto crops = (*maps)[0].slice(0, *first, *first + (rows == 2 * n ? n : rows));
    return rows == 2 * n ? torch::cat({crops, (*maps)[1].slice(0, *first, *first + n)})
                         : crops.clone();
  };
  const std::string name = encoding == hg::data::TargetEncoding::kUnbiased ? "unbiased" : "rounded";
  char label[96];
  std::snprintf(label, sizeof label, "oracle: the %s targets (σ %g, %d px)", name.c_str(), sigma,
                res);
  return {label, net, data.joints(), res, hg::data::PixelGrid::kExact, 1};
}

nlohmann::json measure(const Source& source, int samples, uint64_t seed, int chunk,
                       int* chunk_first) {
  const auto& joints = source.joints;
  const int res = source.res, stacks = source.stacks;
  const auto grid = source.grid;
  const auto& net = source.net;
  TORCH_CHECK(joints.size() == 16, source.name, " predicts ", joints.size(),
              " joints; the synthetic people have the 16 MPII joints");

  // The crops as evaluation makes them: the annotation's centre and scale, no augmentation.
  const hg::data::SyntheticDataset data(static_cast<size_t>(samples), seed);
  hg::data::SampleOptions so;
  so.res = res;
  so.grid = grid;
  auto input = torch::empty({samples, res, res, 3});
  std::vector<hg::data::CropParams> crops;
  std::vector<hg::data::Annotation> people;
  for (int i = 0; i < samples; ++i) {
    const auto s = hg::data::make_sample(data, static_cast<size_t>(i), so, {});
    std::memcpy(input[i].data_ptr<float>(), s.input.ptr<float>(), sizeof(float) * 3 * res * res);
    crops.push_back(s.meta.crop);
    people.push_back(data.annotation(static_cast<size_t>(i)));
  }
  input = input.permute({0, 3, 1, 2}).contiguous();

  std::vector<hg::infer::Predictor> predictors;
  for (const auto& v : kVariants) {
    hg::infer::PredictorOptions o;
    o.input_size = res;
    o.grid = grid;
    o.flip = v.flip;
    o.flip_shift = v.flip_shift;
    o.decoder = v.decoder;
    o.batch = chunk;
    predictors.emplace_back(net, joints, o);
  }
  std::vector<std::vector<at::Tensor>> out(kVariants.size());
  std::vector<double> ms(kVariants.size(), 0), decode_ms(kVariants.size(), 0);
  *chunk_first = 0;
  predictors[0].predict_crops(input.slice(0, 0, 1), {crops[0]});  // warm-up
  for (int first = 0; first < samples; first += chunk) {
    *chunk_first = first;
    const int last = std::min(samples, first + chunk);
    const auto x = input.slice(0, first, last);
    const std::vector<hg::data::CropParams> c(crops.begin() + first, crops.begin() + last);
    for (size_t v = 0; v < kVariants.size(); ++v) {
      auto t0 = Clock::now();
      out[v].push_back(predictors[v].predict_crops(x, c));
      ms[v] += ms_since(t0);
    }
    // Decoding alone, on the flip-averaged maps of this chunk.
    const auto maps = predictors[2].heatmaps(x);
    for (size_t v = 0; v < kVariants.size(); ++v) {
      auto t0 = Clock::now();
      hg::infer::decode(maps, kVariants[v].decoder);
      decode_ms[v] += ms_since(t0);
    }
  }

  const auto truth = hg::eval::truth_of(data);
  const auto coco_truth = synthetic_truth(people);
  nlohmann::json rows = nlohmann::json::array();
  for (size_t v = 0; v < kVariants.size(); ++v) {
    const auto pred = torch::cat(out[v]);  // N×S×J×3
    nlohmann::json row = {{"option", kVariants[v].name},
                          {"ms_per_person", ms[v] / samples},
                          {"decode_ms_per_person", decode_ms[v] / samples}};
    for (int s = 0; s < stacks; ++s) {
      const auto p = pred.select(1, s);
      const auto errors = hg::eval::normalized_errors(p.slice(2, 0, 2).to(torch::kDouble),
                                                      truth.joints, truth.present, truth.normalize);
      std::vector<hg::eval::CocoDetection> dets;
      for (int i = 0; i < samples; ++i) {
        const auto k = p[i].to(torch::kDouble).contiguous();
        hg::eval::CocoDetection d;
        d.image_id = i + 1;
        d.keypoints.assign(k.data_ptr<double>(), k.data_ptr<double>() + k.numel());
        std::vector<double> conf;
        for (int64_t j = 0; j < k.size(0); ++j) conf.push_back(d.keypoints[3 * j + 2]);
        d.score = hg::eval::person_score(1, conf);
        dets.push_back(std::move(d));
      }
      const auto ap = hg::eval::evaluate_coco_keypoints(coco_truth, dets);
      row["stacks"].push_back({{"pckh@0.5", hg::eval::pck_table(errors, joints, 0.5).mean},
                               {"pckh@0.1", hg::eval::pck_table(errors, joints, 0.1).mean},
                               {"AP", 100 * ap.ap},
                               {"AP50", 100 * ap.ap50},
                               {"AP75", 100 * ap.ap75}});
    }
    rows.push_back(row);
  }
  return {{"model", source.name},       {"pixel_grid", hg::data::pixel_grid_name(grid)},
          {"input_size", res},          {"samples", samples},
          {"dataset", data.describe()}, {"rows", rows}};
}

void print_table(const nlohmann::json& m) {
  std::printf("\n%s (%s grid, %d px), %d held-out people of %s\n",
              m["model"].get<std::string>().c_str(), m["pixel_grid"].get<std::string>().c_str(),
              m["input_size"].get<int>(), m["samples"].get<int>(),
              m["dataset"].get<std::string>().c_str());
  std::printf(
      "| option | PCKh@0.5 per stack | PCKh@0.1 per stack | AP (OKS) | AP50 | AP75 | "
      "ms/person | of which decoding |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : m["rows"]) {
    std::string p5, p1;
    for (const auto& s : r["stacks"]) {
      char b[32];
      std::snprintf(b, sizeof b, "%s%.1f", p5.empty() ? "" : " / ", s["pckh@0.5"].get<double>());
      p5 += b;
      std::snprintf(b, sizeof b, "%s%.1f", p1.empty() ? "" : " / ", s["pckh@0.1"].get<double>());
      p1 += b;
    }
    const auto& last = r["stacks"].back();
    std::printf("| %s | %s | %s | %.1f | %.1f | %.1f | %.2f | %.3f |\n",
                r["option"].get<std::string>().c_str(), p5.c_str(), p1.c_str(),
                last["AP"].get<double>(), last["AP50"].get<double>(), last["AP75"].get<double>(),
                r["ms_per_person"].get<double>(), r["decode_ms_per_person"].get<double>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models;
  bool oracle = false;
  int samples = 500, chunk = 25, threads = 0;
  uint64_t seed = 3;  // the demo's held-out people (`hourglass demo` evaluates synthetic:500:3)
  std::string json_path;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      const auto value = [&]() -> std::string {
        TORCH_CHECK(i + 1 < argc, a, " needs a value");
        return argv[++i];
      };
      if (a == "--samples") {
        samples = std::stoi(value());
      } else if (a == "--seed") {
        seed = std::stoull(value());
      } else if (a == "--chunk") {
        chunk = std::stoi(value());
      } else if (a == "--threads") {
        threads = std::stoi(value());
      } else if (a == "--oracle") {
        oracle = true;
      } else if (a == "--json") {
        json_path = value();
      } else {
        TORCH_CHECK(a.empty() || a[0] != '-', "unknown option ", a);
        models.push_back(a);
      }
    }
    TORCH_CHECK((oracle || !models.empty()) && samples > 0 && chunk > 0,
                "usage: hg_decoder_table [MODEL.hg ...] [--oracle] [--samples N] [--seed S] "
                "[--chunk C] [--threads T] [--json F]");
    hg::runtime::apply_threads(threads);
    nlohmann::json all = nlohmann::json::array();
    int first = 0;
    std::vector<Source> sources;
    if (oracle) {
      // The demo recipe's targets: 128 px crops, σ 2.
      const hg::data::SyntheticDataset data(static_cast<size_t>(samples), seed);
      for (const auto e : {hg::data::TargetEncoding::kUnbiased, hg::data::TargetEncoding::kRounded})
        sources.push_back(oracle_source(data, samples, 128, 2.0, e, chunk, &first));
    }
    for (const auto& m : models) sources.push_back(model_source(m, threads));
    for (const auto& source : sources) {
      all.push_back(measure(source, samples, seed, chunk, &first));
      print_table(all.back());
    }
    if (!json_path.empty()) {
      std::ofstream f(json_path);
      f << all.dump(2) << "\n";
      TORCH_CHECK(f.good(), "cannot write ", json_path);
    }
  } catch (const std::exception& e) {
    std::cerr << "hg_decoder_table: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
