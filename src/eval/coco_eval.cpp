#include "hg/eval/coco_eval.h"
#include "hg/runtime/text.h"

#include "hg/data/dataset.h"
#include "hg/data/json.h"
#include "hg/io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

namespace hg::eval {
namespace {

using nlohmann::json;

// np.spacing(1): cocoeval adds it to OKS scales and precision denominators.
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr int kThresholds = 10;  // 0.50:0.05:0.95
constexpr int kRecalls = 101;    // 0:0.01:1

[[noreturn]] void fail(const std::string& file, const std::string& why) {
  throw std::runtime_error("cannot read " + file + ": " + why);
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "no such file or not readable");
  return data::parse_json(in, path);
}

const json& field(const std::string& file, const json& object, const std::string& where,
                  const char* key) {
  if (!object.is_object() || !object.contains(key))
    fail(file, "field '" + where + "." + key + "' is missing");
  return object[key];
}

double number(const std::string& file, const json& v, const std::string& where) {
  if (!v.is_number()) fail(file, "field '" + where + "' must be a number");
  return v.get<double>();
}

int64_t integer(const std::string& file, const json& object, const std::string& where,
                const char* key) {
  const json& v = field(file, object, where, key);
  if (!v.is_number_integer()) fail(file, "field '" + where + "." + key + "' must be an integer");
  return v.get<int64_t>();
}

std::vector<double> numbers(const std::string& file, const json& v, const std::string& where) {
  if (!v.is_array()) fail(file, "field '" + where + "' must be a list of numbers");
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(number(file, v[i], where + "[" + std::to_string(i) + "]"));
  return out;
}

// numpy's pairwise summation (np.sum of a float64 vector), so that OKS values equal cocoeval's to
// the last bit and ties at a threshold go the same way.
double numpy_sum(const double* a, size_t n) {
  if (n < 8) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += a[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    std::copy(a, a + 8, r);
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += a[i];
    return s;
  }
  size_t half = n / 2;
  half -= half % 8;
  return numpy_sum(a, half) + numpy_sum(a + half, n - half);
}

// np.linspace(start, stop, n): i·step + start, the last exactly stop (cocoeval's thresholds are
// compared with recalls and OKS values, so they must be the same doubles).
std::vector<double> linspace(double start, double stop, int n) {
  const double step = (stop - start) / (n - 1);
  std::vector<double> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = i * step + start;
  out.back() = stop;
  return out;
}

struct AreaRange {
  double lo, hi;
  bool outside(double area) const { return area < lo || area > hi; }
};
const AreaRange kAreas[] = {{0, 1e10}, {32.0 * 32, 96.0 * 96}, {96.0 * 96, 1e10}};
constexpr int kAll = 0, kMedium = 1, kLarge = 2, kAreaCount = 3;

// A detection's area as loadRes sets it: the bounding box of all its joints.
double detection_area(const std::vector<double>& kp) {
  double x0 = kp[0], x1 = kp[0], y0 = kp[1], y1 = kp[1];
  for (size_t i = 0; i + 2 < kp.size(); i += 3) {
    x0 = std::min(x0, kp[i]);
    x1 = std::max(x1, kp[i]);
    y0 = std::min(y0, kp[i + 1]);
    y1 = std::max(y1, kp[i + 1]);
  }
  return (x1 - x0) * (y1 - y0);
}

// One detection of one image and area range, as accumulate sees it.
struct Scored {
  double score;
  std::array<bool, kThresholds> matched, ignored;
};

// Everything accumulate needs for one category and area range.
struct Pool {
  std::vector<Scored> detections;  // images in id order, each best score first
  int64_t relevant = 0;            // truths not ignored (npig)
};

// evaluateImg for one image, category and area range: greedy matching at every threshold.
void match_image(const std::vector<const CocoTruthPerson*>& truths,
                 const std::vector<const CocoDetection*>& dets,
                 const std::vector<double>& det_areas, const std::vector<std::vector<double>>& oks,
                 const AreaRange& range, const std::vector<double>& thresholds, Pool& pool) {
  const size_t G = truths.size(), D = dets.size();
  std::vector<bool> ignore(G);
  for (size_t g = 0; g < G; ++g) {
    const auto& t = *truths[g];
    ignore[g] = t.crowd || t.num_keypoints == 0 || range.outside(t.area);
  }
  // Ignored truths last, else in file order.
  std::vector<size_t> order(G);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return !ignore[a] && ignore[b]; });
  for (size_t g = 0; g < G; ++g) pool.relevant += ignore[g] ? 0 : 1;

  std::vector<Scored> out(D);
  for (size_t d = 0; d < D; ++d) {
    out[d].score = dets[d]->score;
    out[d].matched.fill(false);
    out[d].ignored.fill(false);
  }
  for (int t = 0; t < kThresholds; ++t) {
    std::vector<bool> taken(G, false);
    for (size_t d = 0; d < D && !oks.empty(); ++d) {
      double best = std::min(thresholds[static_cast<size_t>(t)], 1 - 1e-10);
      long m = -1;
      for (size_t gi = 0; gi < G; ++gi) {
        const size_t g = order[gi];
        if (taken[g] && !truths[g]->crowd) continue;
        // A match with a counted truth is not traded for an ignored one.
        if (m > -1 && !ignore[static_cast<size_t>(m)] && ignore[g]) break;
        if (!(oks[d][g] >= best)) continue;  // a NaN OKS matches nothing
        best = oks[d][g];
        m = static_cast<long>(g);
      }
      if (m == -1) continue;
      taken[static_cast<size_t>(m)] = true;
      out[d].ignored[t] = ignore[static_cast<size_t>(m)];
      // cocoeval records the truth's id and tests it for non-zero.
      out[d].matched[t] = truths[static_cast<size_t>(m)]->id != 0;
    }
    for (size_t d = 0; d < D; ++d)
      if (!out[d].matched[t] && range.outside(det_areas[d])) out[d].ignored[t] = true;
  }
  pool.detections.insert(pool.detections.end(), out.begin(), out.end());
}

// accumulate for one pool: 101-point interpolated precision (summed over recalls) and final
// recall at every threshold.
struct Accumulated {
  std::array<double, kThresholds> precision_sum{}, recall{};
};

Accumulated accumulate(Pool pool, const std::vector<double>& recalls) {
  std::stable_sort(pool.detections.begin(), pool.detections.end(),
                   [](const Scored& a, const Scored& b) { return a.score > b.score; });
  const auto& ds = pool.detections;
  const size_t n = ds.size();
  Accumulated acc;
  for (int t = 0; t < kThresholds; ++t) {
    std::vector<double> rc(n), pr(n);
    double tp = 0, fp = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!ds[i].ignored[t]) (ds[i].matched[t] ? tp : fp) += 1;
      rc[i] = tp / static_cast<double>(pool.relevant);
      pr[i] = tp / (fp + tp + kEps);
    }
    acc.recall[t] = n ? rc.back() : 0;
    for (size_t i = n; i-- > 1;) pr[i - 1] = std::max(pr[i - 1], pr[i]);
    double sum = 0;
    for (double r : recalls) {
      const size_t i = static_cast<size_t>(std::lower_bound(rc.begin(), rc.end(), r) - rc.begin());
      if (i >= n) break;
      sum += pr[i];
    }
    acc.precision_sum[t] = sum;
  }
  return acc;
}

std::vector<double> flat_keypoints(const std::string& file, const json& v, const std::string& where,
                                   size_t joints) {
  auto kp = numbers(file, v, where);
  if (kp.empty() || kp.size() % 3 != 0 || (joints > 0 && kp.size() != 3 * joints))
    fail(file, "field '" + where + "' has " + std::to_string(kp.size()) + " numbers, expected " +
                   (joints > 0 ? std::to_string(3 * joints) : std::string("3 per joint")) +
                   " (x, y, v for every joint)");
  return kp;
}

}  // namespace

std::vector<double> coco_keypoint_sigmas() {
  return data::coco_joints().sigmas;
}

// pycocotools indexes images and annotations by id, so a repeated id silently drops entries (an
// AP of 1.0 where it gives 0.835): refused, naming the ids.
void refuse_duplicates(const std::string& path, std::vector<int64_t> ids, const std::string& what) {
  std::sort(ids.begin(), ids.end());
  std::vector<int64_t> repeated;
  for (size_t i = 1; i < ids.size(); ++i)
    if (ids[i] == ids[i - 1] && (repeated.empty() || repeated.back() != ids[i]))
      repeated.push_back(ids[i]);
  if (repeated.empty()) return;
  fail(path, "'." + what + "' repeats the id" + (repeated.size() > 1 ? "s " : " ") +
                 runtime::listed(repeated) + ": every entry needs its own id");
}

CocoTruth read_coco_truth(const std::string& path) {
  const json root = read_json(path);
  CocoTruth truth;
  const json& images = field(path, root, "", "images");
  if (!images.is_array()) fail(path, "field '.images' must be a list");
  std::map<int64_t, std::string> files;
  std::vector<int64_t> image_ids, annotation_ids;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string w = ".images[" + std::to_string(i) + "]";
    image_ids.push_back(integer(path, images[i], w, "id"));
    files[image_ids.back()] = images[i].value("file_name", "");
  }
  refuse_duplicates(path, image_ids, "images");
  for (const auto& [id, file] : files) {
    truth.image_ids.push_back(id);
    truth.image_files.push_back(file);
  }
  const json& categories = field(path, root, "", "categories");
  if (!categories.is_array() || categories.empty())
    fail(path, "field '.categories' must be a non-empty list");
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string w = ".categories[" + std::to_string(i) + "]";
    truth.category_ids.push_back(integer(path, categories[i], w, "id"));
    if (i == 0 || categories[i].value("name", "") == "person")
      truth.person_category = truth.category_ids.back();
    if (categories[i].contains("sigmas"))
      truth.sigmas = numbers(path, categories[i]["sigmas"], w + ".sigmas");
  }
  std::sort(truth.category_ids.begin(), truth.category_ids.end());
  truth.category_ids.erase(std::unique(truth.category_ids.begin(), truth.category_ids.end()),
                           truth.category_ids.end());
  const json& annotations = field(path, root, "", "annotations");
  if (!annotations.is_array()) fail(path, "field '.annotations' must be a list");
  for (size_t i = 0; i < annotations.size(); ++i) {
    const std::string w = ".annotations[" + std::to_string(i) + "]";
    const json& a = annotations[i];
    CocoTruthPerson p;
    p.image_id = integer(path, a, w, "image_id");
    if (!std::binary_search(truth.image_ids.begin(), truth.image_ids.end(), p.image_id)) continue;
    p.id = integer(path, a, w, "id");
    annotation_ids.push_back(p.id);
    p.category_id = integer(path, a, w, "category_id");
    p.keypoints = flat_keypoints(path, field(path, a, w, "keypoints"), w + ".keypoints",
                                 truth.people.empty() ? 0 : truth.people[0].keypoints.size() / 3);
    const auto box = numbers(path, field(path, a, w, "bbox"), w + ".bbox");
    if (box.size() != 4) fail(path, "field '" + w + ".bbox' must be [x, y, w, h]");
    std::copy(box.begin(), box.end(), p.bbox.begin());
    p.area = number(path, field(path, a, w, "area"), w + ".area");
    p.crowd = a.contains("iscrowd") && number(path, a["iscrowd"], w + ".iscrowd") != 0;
    if (a.contains("num_keypoints")) {
      p.num_keypoints = integer(path, a, w, "num_keypoints");
    } else {
      for (size_t k = 2; k < p.keypoints.size(); k += 3) p.num_keypoints += p.keypoints[k] > 0;
    }
    truth.people.push_back(std::move(p));
  }
  refuse_duplicates(path, annotation_ids, "annotations");
  const size_t joints = truth.people.empty() ? 0 : truth.people[0].keypoints.size() / 3;
  if (truth.sigmas.empty() && (joints == 17 || joints == 0)) truth.sigmas = coco_keypoint_sigmas();
  if (joints > 0 && truth.sigmas.size() != joints)
    fail(path, "its people have " + std::to_string(joints) + " joints but " +
                   (truth.sigmas.empty() ? std::string("no per-joint OKS sigmas are given")
                                         : std::to_string(truth.sigmas.size()) + " sigmas") +
                   ": add \"sigmas\": [one per joint] to the person category");
  return truth;
}

std::vector<CocoDetection> read_coco_detections(const std::string& path) {
  const json root = read_json(path);
  if (!root.is_array())
    fail(path,
         "a COCO keypoint results file is a list of {\"image_id\", \"category_id\", "
         "\"keypoints\", \"score\"}");
  std::vector<CocoDetection> out;
  for (size_t i = 0; i < root.size(); ++i) {
    const std::string w = "[" + std::to_string(i) + "]";
    CocoDetection d;
    d.image_id = integer(path, root[i], w, "image_id");
    d.category_id = integer(path, root[i], w, "category_id");
    d.keypoints = flat_keypoints(path, field(path, root[i], w, "keypoints"), w + ".keypoints",
                                 out.empty() ? 0 : out[0].keypoints.size() / 3);
    d.score = number(path, field(path, root[i], w, "score"), w + ".score");
    out.push_back(std::move(d));
  }
  return out;
}

void write_coco_detections(const std::string& path, const std::vector<CocoDetection>& detections) {
  json out = json::array();
  for (const auto& d : detections) {
    out.push_back({{"image_id", d.image_id},
                   {"category_id", d.category_id},
                   {"keypoints", d.keypoints},
                   {"score", d.score}});
    if (!d.bbox.empty()) out.back()["bbox"] = d.bbox;
  }
  io::write_file_atomic(path, runtime::json_text(out) + "\n");
}

double object_keypoint_similarity(const std::vector<double>& det, const CocoTruthPerson& truth,
                                  const std::vector<double>& sigmas) {
  const size_t K = sigmas.size();
  if (det.size() != 3 * K || truth.keypoints.size() != 3 * K)
    throw std::invalid_argument("OKS needs " + std::to_string(K) + " joints (one per sigma), got " +
                                std::to_string(det.size() / 3) + " detected and " +
                                std::to_string(truth.keypoints.size() / 3) + " true");
  const auto& g = truth.keypoints;
  size_t labelled = 0;
  for (size_t k = 0; k < K; ++k) labelled += g[3 * k + 2] > 0;
  const auto& b = truth.bbox;
  const double x0 = b[0] - b[2], x1 = b[0] + b[2] * 2, y0 = b[1] - b[3], y1 = b[1] + b[3] * 2;
  std::vector<double> terms;
  for (size_t k = 0; k < K; ++k) {
    double dx, dy;
    if (labelled > 0) {
      if (!(g[3 * k + 2] > 0)) continue;
      dx = det[3 * k] - g[3 * k];
      dy = det[3 * k + 1] - g[3 * k + 1];
    } else {
      dx = std::max(0.0, x0 - det[3 * k]) + std::max(0.0, det[3 * k] - x1);
      dy = std::max(0.0, y0 - det[3 * k + 1]) + std::max(0.0, det[3 * k + 1] - y1);
    }
    const double var = (sigmas[k] * 2) * (sigmas[k] * 2);
    const double e = (dx * dx + dy * dy) / var / (truth.area + kEps) / 2;
    terms.push_back(std::exp(-e));
  }
  return numpy_sum(terms.data(), terms.size()) / static_cast<double>(terms.size());
}

std::vector<std::pair<std::string, double>> CocoKeypointScores::named() const {
  return {{"AP", ap}, {"AP50", ap50}, {"AP75", ap75}, {"APm", ap_medium}, {"APl", ap_large},
          {"AR", ar}, {"AR50", ar50}, {"AR75", ar75}, {"ARm", ar_medium}, {"ARl", ar_large}};
}

CocoKeypointScores evaluate_coco_keypoints(const CocoTruth& truth,
                                           const std::vector<CocoDetection>& detections,
                                           const CocoEvalOptions& options) {
  using Key = std::pair<int64_t, int64_t>;  // image, category
  std::map<Key, std::vector<const CocoTruthPerson*>> truths;
  for (const auto& p : truth.people) truths[{p.image_id, p.category_id}].push_back(&p);
  std::map<Key, std::vector<const CocoDetection*>> dets;
  for (size_t i = 0; i < detections.size(); ++i) {
    const auto& d = detections[i];
    if (!std::binary_search(truth.image_ids.begin(), truth.image_ids.end(), d.image_id))
      throw std::invalid_argument("detection " + std::to_string(i) + " names image_id " +
                                  std::to_string(d.image_id) +
                                  ", which the ground truth does not list (the results do not "
                                  "correspond to this dataset)");
    if (d.keypoints.size() != 3 * truth.sigmas.size())
      throw std::invalid_argument(
          "detection " + std::to_string(i) + " has " + std::to_string(d.keypoints.size() / 3) +
          " joints, the ground truth " + std::to_string(truth.sigmas.size()));
    dets[{d.image_id, d.category_id}].push_back(&d);
  }
  const auto thresholds = linspace(0.5, 0.95, kThresholds);
  const auto recalls = linspace(0.0, 1.0, kRecalls);
  const std::vector<const CocoTruthPerson*> no_truth;
  const std::vector<const CocoDetection*> no_dets;

  // Sums over categories with truth of the mean precision and recall, per area and threshold.
  std::array<std::array<double, kThresholds>, kAreaCount> precision{}, recall{};
  std::array<int, kAreaCount> categories{};
  for (int64_t cat : truth.category_ids) {
    std::array<Pool, kAreaCount> pools;
    for (int64_t img : truth.image_ids) {
      const auto ti = truths.find({img, cat});
      const auto di = dets.find({img, cat});
      const auto& ts = ti == truths.end() ? no_truth : ti->second;
      auto ds = di == dets.end() ? no_dets : di->second;
      if (ts.empty() && ds.empty()) continue;
      std::stable_sort(ds.begin(), ds.end(), [](const CocoDetection* a, const CocoDetection* b) {
        return a->score > b->score;
      });
      if (ds.size() > static_cast<size_t>(options.max_detections))
        ds.resize(static_cast<size_t>(options.max_detections));
      std::vector<std::vector<double>> oks;
      if (!ts.empty() && !ds.empty())
        for (const auto* d : ds) {
          oks.emplace_back();
          for (const auto* t : ts)
            oks.back().push_back(object_keypoint_similarity(d->keypoints, *t, truth.sigmas));
        }
      std::vector<double> areas;
      for (const auto* d : ds) areas.push_back(detection_area(d->keypoints));
      for (int a = 0; a < kAreaCount; ++a)
        match_image(ts, ds, areas, oks, kAreas[a], thresholds, pools[static_cast<size_t>(a)]);
    }
    for (int a = 0; a < kAreaCount; ++a) {
      auto& pool = pools[static_cast<size_t>(a)];
      if (pool.relevant == 0) continue;
      const auto acc = accumulate(std::move(pool), recalls);
      ++categories[static_cast<size_t>(a)];
      for (int t = 0; t < kThresholds; ++t) {
        precision[static_cast<size_t>(a)][t] += acc.precision_sum[t] / kRecalls;
        recall[static_cast<size_t>(a)][t] += acc.recall[t];
      }
    }
  }

  // summarize: means over thresholds (all, or the one asked) and categories with truth.
  const auto mean = [&](const auto& sums, int area, int threshold) {
    const auto a = static_cast<size_t>(area);
    if (categories[a] == 0) return -1.0;
    double s = 0;
    int count = 0;
    for (int t = 0; t < kThresholds; ++t)
      if (threshold < 0 || t == threshold) {
        s += sums[a][t];
        ++count;
      }
    return s / (count * categories[a]);
  };
  constexpr int kEvery = -1, k50 = 0, k75 = 5;
  CocoKeypointScores s;
  s.ap = mean(precision, kAll, kEvery);
  s.ap50 = mean(precision, kAll, k50);
  s.ap75 = mean(precision, kAll, k75);
  s.ap_medium = mean(precision, kMedium, kEvery);
  s.ap_large = mean(precision, kLarge, kEvery);
  s.ar = mean(recall, kAll, kEvery);
  s.ar50 = mean(recall, kAll, k50);
  s.ar75 = mean(recall, kAll, k75);
  s.ar_medium = mean(recall, kMedium, kEvery);
  s.ar_large = mean(recall, kLarge, kEvery);
  return s;
}

std::vector<size_t> oks_nms(const std::vector<CocoDetection>& people,
                            const std::vector<double>& areas, const std::vector<double>& sigmas,
                            double threshold) {
  if (areas.size() != people.size())
    throw std::invalid_argument("oks_nms: " + std::to_string(people.size()) + " people but " +
                                std::to_string(areas.size()) + " areas");
  std::vector<size_t> order(people.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return people[a].score > people[b].score; });
  std::vector<size_t> kept;
  for (size_t i : order) {
    bool suppressed = false;
    for (size_t k : kept) {
      // The kept person as truth, every joint labelled, the two areas' mean as its scale.
      CocoTruthPerson ref;
      ref.keypoints = people[k].keypoints;
      for (size_t j = 2; j < ref.keypoints.size(); j += 3) ref.keypoints[j] = 2;
      ref.area = (areas[k] + areas[i]) / 2;
      if (object_keypoint_similarity(people[i].keypoints, ref, sigmas) > threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(i);
  }
  return kept;
}

double person_score(double box_score, const std::vector<double>& joint_scores, double threshold) {
  double sum = 0;
  int count = 0;
  for (double s : joint_scores)
    if (s > threshold) {
      sum += s;
      ++count;
    }
  return count > 0 ? box_score * sum / count : 0.0;
}

}  // namespace hg::eval
