#include "cli/cli.h"
#include "hg/data/dataset.h"
#include "hg/infer/results.h"
#include "hg/io/atomic_file.h"
#include "hg/viz/draw.h"

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace hg::cli {
namespace {

struct Args {
  std::string image, output = "show.png";
  int person = 0, zoom = 1;
  bool stacks = false;
  PredictorArgs model;
  PersonArgs people;
};

// What one stack predicts, drawn on the (magnified) crop.
struct View {
  cv::Mat crop;                 // big×big RGB
  std::vector<cv::Mat> maps;    // J heatmaps (CV_32F, h×w) of this stack
  std::vector<cv::Point2d> at;  // joints in big-crop pixels
  std::vector<float> score;
};

View view_of(const infer::PosePrediction& p, const cv::Mat& crop, int64_t stack, int input_size,
             data::PixelGrid grid, int zoom) {
  View v;
  cv::resize(crop, v.crop, cv::Size(), zoom, zoom, cv::INTER_LINEAR);
  auto c = p.person.crop;
  c.grid = grid;
  const data::CropTransform t(c, input_size);
  const auto a = p.joints.accessor<float, 3>();
  // Shown on one scale per stack, [0, the stack's highest value], so that untrained or
  // differently scaled outputs stay readable and weak joints look weak.
  const auto raw = p.heatmaps[stack];
  const auto maps = (raw.clamp_min(0) / raw.max().clamp_min(1e-6)).contiguous();
  for (int64_t j = 0; j < maps.size(0); ++j) {
    const auto u = t.forward({a[stack][j][0], a[stack][j][1]});
    v.at.push_back(viz::magnify(u, zoom));
    v.score.push_back(a[stack][j][2]);
    v.maps.emplace_back(cv::Mat(static_cast<int>(maps.size(1)), static_cast<int>(maps.size(2)),
                                CV_32F, maps[j].data_ptr<float>())
                            .clone());
  }
  return v;
}

// The paper's example output: skeleton, then every joint's heatmap over the crop.
cv::Mat montage(const View& v, const data::JointSet& joints) {
  std::vector<cv::Mat> tiles = {viz::skeleton_panel(v.crop, v.at, joints, "prediction"),
                                viz::max_panel(v.crop, v.maps, "max of heatmaps")};
  for (size_t j = 0; j < v.maps.size(); ++j) {
    cv::Mat t = viz::overlay_map(v.crop, v.maps[j]);
    char score[32];
    std::snprintf(score, sizeof score, " %.2f", v.score[j]);
    viz::put_label(t, joints.names[j] + score, {6, 18});
    tiles.push_back(t);
  }
  return viz::tile(tiles, 6);
}

}  // namespace

void add_show_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "show", "draw a person's predicted skeleton and per-joint heatmaps on the crop (PNG)");
  cmd->add_option("image", args->image, "an image")->required()->check(CLI::ExistingFile);
  add_predictor_options(*cmd, args->model, false, false);
  add_max_pixels_option(*cmd);
  add_person_options(*cmd, args->people);
  cmd->add_option("--person", args->person, "which person found in the image (0 = best)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--stacks", args->stacks,
                "every stack's skeleton and heatmap maximum side by side instead");
  cmd->add_option("--zoom", args->zoom, "magnification of the crop")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  cmd->add_option("--output,-o", args->output, "PNG to write")->capture_default_str();
  cmd->callback([args, &global] {
    apply_threads(global);
    const auto predictor = make_predictor(args->model, global);
    const auto rgb = data::read_image_rgb(args->image);
    const auto people = PersonFinder(args->people)
                            .find(std::filesystem::path(args->image).filename().string(), rgb);
    TORCH_CHECK(args->person < static_cast<int>(people.size()), "--person ", args->person,
                " asked for, but ", args->image, " has ",
                runtime::count(int64_t(people.size()), "person", "people"), " (from 0)");
    const auto& who = people[static_cast<size_t>(args->person)];
    const auto p = predictor.predict(rgb, {who}, true).at(0);
    const auto& o = predictor.options();
    auto crop_params = who.crop;
    crop_params.grid = *o.grid;
    const cv::Mat crop = data::CropTransform(crop_params, o.input_size).warp(rgb);
    const int64_t stacks = p.joints.size(0);
    cv::Mat out;
    if (args->stacks) {
      std::vector<cv::Mat> top, bottom;
      for (int64_t s = 0; s < stacks; ++s) {
        const auto v = view_of(p, crop, s, o.input_size, *o.grid, args->zoom);
        const auto n = std::to_string(s + 1);
        top.push_back(viz::skeleton_panel(v.crop, v.at, predictor.joints(), "stack " + n));
        bottom.push_back(viz::max_panel(v.crop, v.maps, "heatmaps, stack " + n));
      }
      top.insert(top.end(), bottom.begin(), bottom.end());
      out = viz::tile(top, static_cast<int>(stacks));
    } else {
      out = montage(view_of(p, crop, stacks - 1, o.input_size, *o.grid, args->zoom),
                    predictor.joints());
    }
    cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
    io::write_image_atomic(args->output, out);
    std::printf("person %d of %zu (%s, centre %.1f,%.1f, scale %.3f); wrote %s\n", args->person,
                people.size(), infer::source_name(who.source).c_str(), who.crop.center.x,
                who.crop.center.y, who.crop.scale, args->output.c_str());
  });
}

}  // namespace hg::cli
