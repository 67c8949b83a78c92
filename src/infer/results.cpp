#include "hg/infer/results.h"
#include "hg/runtime/text.h"

#include "hg/data/json.h"
#include "hg/data/readers.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>

namespace hg::infer {

using nlohmann::json;

json results_header(const data::JointSet& joints, const std::string& model,
                    const PredictorOptions& options) {
  const json set = data::joint_set_to_json(joints);
  return {{"format", "hourglass-predictions"},
          {"version", 1},
          {"joint_set", joints.name},
          {"joints", joints.names},
          {"flip_pairs", set["flip_pairs"]},
          {"skeleton", set["skeleton"]},
          {"model", model},
          {"input_size", options.input_size},
          {"flip_test", options.flip.value_or(InferenceDefaults{}.flip)},
          {"decoder", decoder_name(options.decoder.value_or(InferenceDefaults{}.decoder))}};
}

json person_to_json(const PosePrediction& p, const data::JointSet& joints) {
  json out = {{"found_by", source_name(p.person.source)}};
  const auto& b = p.person.box;
  // A bottom-up model's box is reported as it came, even degenerate (random weights give some).
  if (b.width > 0 || p.person.source == PersonSource::kBottomUp)
    out["box"] = {b.x, b.y, b.width, b.height};
  if (p.person.source == PersonSource::kDetector || p.person.source == PersonSource::kBottomUp)
    out["detection_score"] = p.person.detection;
  out["center"] = {p.person.crop.center.x, p.person.crop.center.y};
  out["scale"] = p.person.crop.scale;
  const auto a = p.joints.accessor<float, 3>();
  const int64_t stacks = a.size(0), last = stacks - 1;
  json named = json::object();
  for (int j = 0; j < joints.size(); ++j)
    named[joints.names[j]] = {{"x", a[last][j][0]}, {"y", a[last][j][1]}, {"score", a[last][j][2]}};
  out["joints"] = named;
  json all = json::array();
  for (int64_t s = 0; s < stacks; ++s) {
    json stack = json::array();
    for (int j = 0; j < joints.size(); ++j) stack.push_back({a[s][j][0], a[s][j][1], a[s][j][2]});
    all.push_back(stack);
  }
  out["stacks"] = all;
  return out;
}

std::vector<ImageResult> read_results(const std::string& path, const data::JointSet& joints) {
  std::ifstream in(path);
  TORCH_CHECK(in, "cannot open predictions file ", path);
  const json root = data::parse_json(in, "predictions file " + path);
  TORCH_CHECK(root.is_object() && root.value("format", "") == "hourglass-predictions",
              "cannot read ", path,
              ": not a predictions file of `hourglass predict` (no \"format\": "
              "\"hourglass-predictions\")");
  TORCH_CHECK(root.contains("joints") && root["joints"] == json(joints.names), "cannot use ", path,
              ": its joints ", runtime::json_text(root.value("joints", json())),
              " are not those of the '", joints.name, "' dataset");
  TORCH_CHECK(root.contains("results") && root["results"].is_array(), "cannot read ", path,
              ": no 'results' list");
  std::vector<ImageResult> out;
  const auto& results = root["results"];
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const std::string where = "results[" + std::to_string(i) + "]";
    try {
      ImageResult ir;
      ir.input = r.at("input").get<std::string>();
      const json frame = r.value("frame", json(-1));
      TORCH_CHECK(frame.is_number_integer(), "'frame' must be an integer, got ",
                  runtime::json_text(frame));
      ir.frame = frame.get<int64_t>();
      ir.error = r.value("error", "");
      for (const auto& p : r.value("people", json::array())) {
        PersonResult pr;
        pr.center = {p.at("center").at(0).get<double>(), p.at("center").at(1).get<double>()};
        pr.scale = p.at("scale").get<double>();
        const auto stacks = p.at("stacks").get<std::vector<std::vector<std::vector<double>>>>();
        TORCH_CHECK(!stacks.empty(), "no stacks");
        pr.joints = torch::empty({static_cast<int64_t>(stacks.size()), joints.size(), 3});
        auto acc = pr.joints.accessor<float, 3>();
        for (size_t s = 0; s < stacks.size(); ++s) {
          TORCH_CHECK(stacks[s].size() == static_cast<size_t>(joints.size()), "stack ", s, " has ",
                      stacks[s].size(), " joints, expected ", joints.size());
          for (int j = 0; j < joints.size(); ++j) {
            TORCH_CHECK(stacks[s][j].size() == 3, "joint ", j, " is not [x, y, score]");
            // Beyond float's range is no position: NaN, which evaluation scores as a miss.
            for (int c = 0; c < 3; ++c)
              acc[s][j][c] = std::abs(stacks[s][j][c]) <= std::numeric_limits<float>::max()
                                 ? static_cast<float>(stacks[s][j][c])
                                 : std::numeric_limits<float>::quiet_NaN();
          }
        }
        ir.people.push_back(std::move(pr));
      }
      out.push_back(std::move(ir));
    } catch (const json::exception& e) {
      TORCH_CHECK(false, "cannot read ", path, ": ", where, ": ", e.what());
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "cannot read ", path, ": ", where, ": ", e.what_without_backtrace());
    }
  }
  return out;
}

}  // namespace hg::infer
