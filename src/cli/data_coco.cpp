#include "cli/data_coco.h"

#include "cli/cli.h"
#include "hg/eval/coco_eval.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace hg::cli {

void print_coco_stats(const std::string& json_path) {
  const auto truth = eval::read_coco_truth(json_path);
  int64_t persons = 0, crowd = 0, empty = 0, used = 0, labelled = 0, small = 0, medium = 0,
          large = 0;
  double wmin = 1e300, wmax = 0, hmin = 1e300, hmax = 0;
  std::set<int64_t> with_people;
  for (const auto& p : truth.people) {
    if (p.category_id != truth.person_category) continue;
    ++persons;
    // The official evaluation's order of the rules: a crowd is a crowd whatever its joints.
    if (p.crowd) {
      ++crowd;
      continue;
    }
    if (p.num_keypoints == 0) {
      ++empty;
      continue;
    }
    ++used;
    with_people.insert(p.image_id);
    labelled += p.num_keypoints;
    wmin = std::min(wmin, p.bbox[2]), wmax = std::max(wmax, p.bbox[2]);
    hmin = std::min(hmin, p.bbox[3]), hmax = std::max(hmax, p.bbox[3]);
    (p.area < 32.0 * 32 ? small : p.area <= 96.0 * 96 ? medium : large) += 1;
  }
  std::printf("COCO:      %s images (%s with people used), %s person annotations\n",
              with_commas(static_cast<int64_t>(truth.image_ids.size())).c_str(),
              with_commas(static_cast<int64_t>(with_people.size())).c_str(),
              with_commas(persons).c_str());
  std::printf("left out:  %s crowds, %s without labelled joints (ignored by OKS AP too)\n",
              with_commas(crowd).c_str(), with_commas(empty).c_str());
  std::printf("used:      %s people, %.1f labelled joints each of %zu\n", with_commas(used).c_str(),
              used > 0 ? static_cast<double>(labelled) / used : 0.0, truth.sigmas.size());
  if (used > 0) {
    std::printf("boxes:     %.0f..%.0f × %.0f..%.0f px (w × h)\n", wmin, wmax, hmin, hmax);
    std::printf("areas:     %s small (< 32², not scored by APm/APl), %s medium, %s large\n",
                with_commas(small).c_str(), with_commas(medium).c_str(),
                with_commas(large).c_str());
  }
}

}  // namespace hg::cli
