#include "cli/cli.h"
#include "cli/data_coco.h"
#include "cli/eval_coco.h"
#include "hg/data/augment.h"
#include "hg/data/readers.h"
#include "hg/data/sample.h"
#include "hg/io/atomic_file.h"
#include "hg/viz/draw.h"

#include <torch/torch.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

namespace hg::cli {

namespace {

using viz::put_label;

// The crop magnified `zoom` times with the target skeleton: joint j is drawn where heatmap j
// peaks (so after a flip's swap), at the centre of that heatmap pixel.
cv::Mat render_skeleton(const data::Sample& s, const data::JointSet& joints, int zoom) {
  const int res = s.input.rows, side = s.heatmaps.empty() ? 1 : s.heatmaps[0].rows;
  const int big = res * zoom;
  cv::Mat crop8;
  s.input.convertTo(crop8, CV_8UC3, 255);
  cv::resize(crop8, crop8, cv::Size(big, big), 0, 0, cv::INTER_NEAREST);

  // Target positions in crop pixels: a heatmap pixel k is centred on crop pixel 4k + 1.5.
  const double f = static_cast<double>(res) / side;
  std::vector<cv::Point2d> at(s.heatmaps.size());
  std::vector<bool> ok(s.heatmaps.size());
  for (size_t j = 0; j < s.heatmaps.size(); ++j) {
    ok[j] = s.weight[j] > 0;
    cv::Point peak;
    cv::minMaxLoc(s.heatmaps[j], nullptr, nullptr, nullptr, &peak);
    at[j] = (cv::Point2d(peak) + cv::Point2d(0.5, 0.5)) * f * zoom - cv::Point2d(0.5, 0.5);
  }
  cv::Mat skel = crop8.clone();
  viz::draw_skeleton(skel, at, ok, joints);
  return skel;
}

// Panels, all RGB 8-bit: the crop with its skeleton, the heatmaps' max over the crop, and every
// heatmap by name.
cv::Mat render_sample(const data::Sample& s, const data::JointSet& joints, int zoom) {
  const int side = s.heatmaps.empty() ? 1 : s.heatmaps[0].rows, big = s.input.rows * zoom;
  cv::Mat skel = render_skeleton(s, joints, zoom);
  put_label(skel, "crop + skeleton (red = right, blue = left)", {6, 18});
  cv::Mat crop8;
  s.input.convertTo(crop8, CV_8UC3, 255);
  cv::resize(crop8, crop8, cv::Size(big, big), 0, 0, cv::INTER_NEAREST);

  cv::Mat hmax = cv::Mat::zeros(side, side, CV_32F);
  for (const auto& h : s.heatmaps) cv::max(hmax, h, hmax);
  cv::Mat overlay = viz::overlay_map(crop8, hmax);
  put_label(overlay, "max of heatmaps", {6, 18});

  const int cols = 4, cell = big / cols;
  const int rows = (static_cast<int>(s.heatmaps.size()) + cols - 1) / cols;
  cv::Mat grid(std::max(big, rows * cell), cell * cols, CV_8UC3, cv::Scalar(40, 40, 40));
  for (size_t j = 0; j < s.heatmaps.size(); ++j) {
    const cv::Mat hc = viz::colour_map(s.heatmaps[j], cv::Size(cell - 2, cell - 2));
    const cv::Rect r(static_cast<int>(j % cols) * cell + 1, static_cast<int>(j / cols) * cell + 1,
                     cell - 2, cell - 2);
    hc.copyTo(grid(r));
    put_label(grid, std::to_string(j) + " " + joints.names[j] + (s.weight[j] > 0 ? "" : " (w=0)"),
              {r.x + 3, r.y + 14}, 0.4);
  }
  cv::Mat canvas(std::max(big, grid.rows), 2 * big + grid.cols, CV_8UC3, cv::Scalar(40, 40, 40));
  skel.copyTo(canvas(cv::Rect(0, 0, big, big)));
  overlay.copyTo(canvas(cv::Rect(big, 0, big, big)));
  grid.copyTo(canvas(cv::Rect(2 * big, 0, grid.cols, grid.rows)));
  return canvas;
}

// What training on `d` will do or refuse, said before a run finds it.
void print_training_notes(const data::Dataset& d, int64_t without_unit, int64_t without_joints,
                          int64_t unreadable) {
  const auto& js = d.joints();
  const auto n = static_cast<int64_t>(d.size());
  std::printf("training:  a %d-joint model (model.joints follows the dataset)\n", js.size());
  if (without_unit > 0)
    std::printf(
        "note:      %s of %s no 'normalize': PCK measures them against the longer side "
        "of their box (PCK@0.2), in eval and in training's validation alike\n",
        runtime::count(without_unit, "person has", "people have").c_str(), with_commas(n).c_str());
  if (without_joints > 0)
    std::printf("warning:   %s no joint annotated: they teach the model nothing\n",
                runtime::count(without_joints, "person has", "people have").c_str());
  if (js.flip_pairs.empty() && js.size() > 1)
    std::printf(
        "warning:   the joint set '%s' has no flip pairs: a recipe that mirrors people "
        "(augment paper, original, coco) would keep left and right labels on the wrong "
        "side; give flip_pairs or train with --set augment=none\n",
        js.name.c_str());
  if (unreadable > 0)
    std::printf("warning:   %s cannot be read: training skips them, each reported once\n",
                runtime::count(unreadable, "image").c_str());
}

void print_stats(const data::Dataset& d, bool read_images) {
  const auto& js = d.joints();
  const size_t n = d.size(), nj = static_cast<size_t>(js.size());
  std::vector<int64_t> present(nj), visible(nj);
  double smin = 1e300, smax = 0, nmin = 1e300, nmax = 0;
  int wmin = 1 << 30, wmax = 0, hmin = 1 << 30, hmax = 0;
  int64_t bad = 0, read = 0, without_unit = 0, without_joints = 0;
  for (size_t i = 0; i < n; ++i) {
    cv::Mat img;
    data::Annotation a;
    if (read_images) {
      try {
        a = d.load(i, img);
        wmin = std::min(wmin, img.cols), wmax = std::max(wmax, img.cols);
        hmin = std::min(hmin, img.rows), hmax = std::max(hmax, img.rows);
        ++read;
      } catch (const data::ImageError& e) {
        if (bad++ < 5) std::cerr << "hourglass: warning: " << e.what() << "\n";
        a = d.annotation(i);
      }
    } else {
      a = d.annotation(i);
    }
    smin = std::min(smin, a.scale), smax = std::max(smax, a.scale);
    nmin = std::min(nmin, a.normalize), nmax = std::max(nmax, a.normalize);
    without_unit += !(a.normalize > 0);
    bool any = false;
    for (size_t j = 0; j < nj; ++j) {
      present[j] += a.joints[j].present;
      visible[j] += a.joints[j].visible;
      any = any || a.joints[j].present;
    }
    without_joints += !any;
  }
  std::printf("dataset:   %s\n", d.describe().c_str());
  std::printf("samples:   %s\n", with_commas(static_cast<int64_t>(n)).c_str());
  std::printf("scale:     %.3f .. %.3f (crop side %.0f .. %.0f px)\n", smin, smax, 200 * smin,
              200 * smax);
  std::printf("normalize: %.2f .. %.2f px\n", nmin, nmax);
  if (read_images) {
    if (read > 0)
      std::printf("images:    %s read, %d..%d × %d..%d px (w × h)\n", with_commas(read).c_str(),
                  wmin, wmax, hmin, hmax);
    std::printf("missing or unreadable images: %s\n", with_commas(bad).c_str());
  }
  std::printf("%-3s %-14s %9s %7s %9s %7s\n", "#", "joint", "present", "%", "visible", "%");
  for (size_t j = 0; j < nj; ++j)
    std::printf("%-3zu %-14s %9ld %6.1f%% %9ld %6.1f%%\n", j, js.names[j].c_str(), long(present[j]),
                100.0 * present[j] / std::max<size_t>(n, 1), long(visible[j]),
                100.0 * visible[j] / std::max<size_t>(n, 1));
  print_training_notes(d, without_unit, without_joints, bad);
}

}  // namespace

void add_data_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string dataset, images, output = "sample.png";
    data::AugmentPreset augment = data::AugmentPreset::kNone;
    bool no_images = false;
    int64_t index = 0, res = 256, zoom = 2, count = 1;
    uint64_t seed = 0;
    double sigma = data::kPaperSigma;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("data", "inspect datasets: statistics and rendered samples");
  cmd->require_subcommand(1);
  const std::string spec_help =
      "an annotation file (MPII/FLIC .h5, COCO or hourglass-pose .json) or synthetic:N[:SEED]";

  auto* stats = cmd->add_subcommand("stats", "samples, joints present/visible, image sizes");
  stats->add_option("dataset", args->dataset, spec_help)->required();
  stats->add_option("--images", args->images, "image directory (default: next to the file)");
  stats->add_flag("--no-images", args->no_images, "do not read the images (annotations only)");
  stats->callback([args, &global] {
    apply_threads(global);
    cv::setNumThreads(global.threads > 0 ? global.threads : -1);
    print_stats(*data::open_dataset(args->dataset, args->images), !args->no_images);
    if (is_coco_dataset(args->dataset)) print_coco_stats(args->dataset);
  });

  auto* show = cmd->add_subcommand("show", "render a sample's crop, skeleton and heatmaps to PNG");
  show->add_option("dataset", args->dataset, spec_help)->required();
  show->add_option("--images", args->images, "image directory (default: next to the file)");
  show->add_option("--index", args->index, "sample number")->capture_default_str();
  show->add_option("--output,-o", args->output, "PNG to write")->capture_default_str();
  add_choice(*show, "--augment,-a", args->augment,
             "none, paper, original or coco (with half-body crops)");
  show->add_option("--seed", args->seed, "augmentation seed")->capture_default_str();
  show->add_option("--size,--res", args->res, "input side (heatmaps size/4)")
      ->capture_default_str();
  show->add_option("--sigma", args->sigma, "heatmap σ in heatmap px (paper 1, original 1.75)")
      ->capture_default_str();
  show->add_option("--zoom", args->zoom, "magnification of the crop panels")->capture_default_str();
  show->add_option("--count,-n", args->count,
                   "render samples index..index+n-1 as a contact sheet of crops with skeletons "
                   "(4 per row) instead of one sample's panels")
      ->capture_default_str();
  show->callback([args, &global] {
    apply_threads(global);
    cv::setNumThreads(global.threads > 0 ? global.threads : -1);
    auto d = data::open_dataset(args->dataset, args->images);
    TORCH_CHECK(args->index >= 0 && static_cast<size_t>(args->index) < d->size(), "--index ",
                args->index, " is out of range: ", d->describe());
    TORCH_CHECK(args->res >= 4 && args->zoom >= 1, "--size must be >= 4 and --zoom >= 1");
    data::SampleOptions o;
    o.res = static_cast<int>(args->res);
    o.sigma = args->sigma;
    o.augment = data::AugmentOptions::preset(args->augment);
    TORCH_CHECK(args->count >= 1, "--count must be >= 1");
    const auto first = static_cast<size_t>(args->index);
    const size_t last = std::min(d->size(), first + static_cast<size_t>(args->count));
    std::vector<cv::Mat> tiles;
    for (size_t i = first; i < last; ++i) {
      auto rng = data::sample_rng(args->seed, 0, i);
      const auto aug = data::sample_augment(o.augment, rng);
      const auto s = data::make_sample(*d, i, o, aug);
      std::printf(
          "sample %zu (%s): scale ×%.3f, rotation %.1f°, flip %s, colour ×(%.2f %.2f "
          "%.2f), %d/%d joints in the crop\n",
          i, d->annotation(i).image.c_str(), aug.scale, aug.rotation_deg, aug.flip ? "yes" : "no",
          aug.colour[0], aug.colour[1], aug.colour[2],
          static_cast<int>(std::count(s.weight.begin(), s.weight.end(), 1.f)), d->joints().size());
      if (args->count == 1) {
        tiles.push_back(render_sample(s, d->joints(), static_cast<int>(args->zoom)));
      } else {
        tiles.push_back(render_skeleton(s, d->joints(), static_cast<int>(args->zoom)));
        put_label(tiles.back(), std::to_string(i), {4, 14});
      }
    }
    cv::Mat out = viz::tile(tiles, 4);
    cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
    io::write_image_atomic(args->output, out);
    std::printf("wrote %s\n", args->output.c_str());
  });
}

}  // namespace hg::cli
