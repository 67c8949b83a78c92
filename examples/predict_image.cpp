// Finds the people in an image and prints every joint of each as JSON.
//   predict_image MODEL IMAGE
#include <hg/hourglass.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: predict_image MODEL IMAGE\n";
    return 2;
  }
  try {
    hg::runtime::apply_threads(0);  // all cores
    const auto predictor = hg::infer::Predictor::load(argv[1]);
    const cv::Mat rgb = hg::data::read_image_rgb(argv[2]);
    auto people = hg::infer::detect_people(rgb);
    if (people.empty())  // no one found: the whole image is the crop
      people.push_back(
          {hg::infer::crop_of_image(rgb.size()), hg::infer::PersonSource::kNoDetection});
    nlohmann::json out = nlohmann::json::array();
    for (const auto& pose : predictor.predict(rgb, people)) {
      const auto last = pose.joints[-1];  // the last stack's J×3: x, y (image pixels), score
      nlohmann::json joints;
      for (int j = 0; j < predictor.joints().size(); ++j)
        joints[predictor.joints().names[j]] = {last[j][0].item<double>(), last[j][1].item<double>(),
                                               last[j][2].item<double>()};
      out.push_back({{"found_by", hg::infer::source_name(pose.person.source)}, {"joints", joints}});
    }
    std::cout << out.dump(1) << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "predict_image: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "predict_image: " << e.what() << "\n";
    return 1;
  }
}
