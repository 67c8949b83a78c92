#include "hg/data/synthetic.h"

#include "hg/data/augment.h"
#include "hg/runtime/text.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

namespace hg::data {

namespace {

// MPII joint numbers.
enum MpiiJoint {
  kRAnk,
  kRKnee,
  kRHip,
  kLHip,
  kLKnee,
  kLAnk,
  kPelvis,
  kThorax,
  kNeck,
  kTop,
  kRWri,
  kRElb,
  kRSho,
  kLSho,
  kLElb,
  kLWri
};

constexpr double kDeg = M_PI / 180;

class Rng {
 public:
  explicit Rng(std::mt19937_64 g) : g_(std::move(g)) {}
  double uni(double a, double b) { return std::uniform_real_distribution<double>(a, b)(g_); }
  double normal(double m, double s) { return std::normal_distribution<double>(m, s)(g_); }
  bool chance(double p) { return uni(0, 1) < p; }
  int integer(int a, int b) { return std::uniform_int_distribution<int>(a, b)(g_); }
  cv::Scalar colour() { return {uni(0, 255), uni(0, 255), uni(0, 255)}; }

 private:
  std::mt19937_64 g_;
};

// A fill: plain, stripes or checks of two colours.
struct Material {
  cv::Scalar base, second;
  int pattern = 0;  // 0 plain, 1 stripes, 2 checks
  double period = 8, angle = 0;
};

Material random_material(Rng& r) {
  Material m;
  m.base = r.colour();
  m.second = r.chance(0.5) ? r.colour() : m.base * 0.55;
  const double u = r.uni(0, 1);
  m.pattern = u < 0.55 ? 0 : (u < 0.85 ? 1 : 2);
  m.period = r.uni(4, 14);
  m.angle = r.uni(0, M_PI);
  return m;
}

cv::Scalar skin_colour(Rng& r) {
  const double t = r.uni(0, 1);
  const cv::Scalar light(250, 215, 185), dark(85, 55, 38);
  return light * (1 - t) + dark * t;
}

// The figure's geometry and look, in image pixels.
struct Figure {
  std::array<cv::Point2d, 16> joint;
  double height = 0, head_len = 0, head_width = 0;
  int arm_w = 6, leg_w = 8, neck_w = 5;
  bool front = true, short_sleeves = false, shorts = false;
  Material shirt, trousers;
  cv::Scalar skin, hair, shoes;
};

cv::Point2d dir(double a) {
  return {std::sin(a), std::cos(a)};
}  // a = 0 points down (y+)

// An articulated figure of `height` px: proportions and joint angles drawn within human limits.
Figure make_figure(Rng& r, double height, double back_facing_prob) {
  Figure f;
  f.height = height;
  const double H = height;
  auto len = [&](double frac) { return frac * H * r.uni(0.92, 1.08); };
  // Out-of-plane turns shorten limbs in the image: factor in (0.7, 1].
  auto fore = [&] { return r.chance(0.35) ? r.uni(0.7, 1.0) : 1.0; };
  const double torso = len(0.30), neck = len(0.045), head = len(0.125);
  const double turn = r.chance(0.25) ? r.uni(0.45, 1.0) : 1.0;  // body turned sideways
  const double sho = len(0.115) * turn, hip = len(0.075) * turn;
  const double uarm = len(0.165), farm = len(0.15), thigh = len(0.235), shin = len(0.235);
  f.front = !r.chance(back_facing_prob);
  // Person's right is on the image left when facing the camera.
  const double rside = f.front ? -1 : 1;

  const double u = r.uni(0, 1);
  const double t = u < 0.7 ? r.normal(0, 10) * kDeg
                           : (u < 0.93 ? r.uni(-60, 60) * kDeg : r.uni(-100, 100) * kDeg);
  const cv::Point2d down = dir(t), right(std::cos(t), -std::sin(t));  // right ⟂ down
  auto& J = f.joint;
  J[kPelvis] = {0, 0};
  J[kThorax] = J[kPelvis] - torso * fore() * down;
  J[kNeck] = J[kThorax] + neck * dir(t + M_PI + r.normal(0, 10) * kDeg);
  f.head_len = head;
  f.head_width = head * r.uni(0.68, 0.82);
  J[kTop] = J[kNeck] + head * dir(t + M_PI + r.uni(-30, 30) * kDeg);
  J[kRSho] = J[kThorax] + rside * sho * right;
  J[kLSho] = J[kThorax] - rside * sho * right;
  J[kRHip] = J[kPelvis] + rside * hip * right;
  J[kLHip] = J[kPelvis] - rside * hip * right;

  // Arms: abduction from the torso's down direction, outwards, -25°..175°; elbow flexion
  // 0..150° to either side (the plane of the arm is free in 2-D).
  for (int side = 0; side < 2; ++side) {
    const double out = (side == 0 ? rside : -rside);  // +1: outwards is image right
    const int s = side == 0 ? kRSho : kLSho, e = side == 0 ? kRElb : kLElb,
              w = side == 0 ? kRWri : kLWri;
    const double abd = r.chance(0.3) ? r.uni(-25, 35) : r.uni(-25, 175);
    const double a_up = t + out * abd * kDeg;
    const double flex = r.chance(0.3) ? r.uni(0, 20) : r.uni(0, 150);
    const double a_fore = a_up + (r.chance(0.5) ? 1 : -1) * flex * kDeg;
    J[e] = J[s] + uarm * fore() * dir(a_up);
    J[w] = J[e] + farm * fore() * dir(a_fore);
  }
  // Legs: standing / walking / sitting or kicking to one side; knees bend backwards only.
  const double pose = r.uni(0, 1);
  const double sit_side = r.chance(0.5) ? 1 : -1;
  for (int side = 0; side < 2; ++side) {
    const double out = (side == 0 ? rside : -rside);
    const int h = side == 0 ? kRHip : kLHip, k = side == 0 ? kRKnee : kLKnee,
              a = side == 0 ? kRAnk : kLAnk;
    double a_thigh, a_shin;
    if (pose < 0.55) {  // standing, legs apart
      a_thigh = t + out * r.uni(-6, 25) * kDeg;
      a_shin = a_thigh + out * r.uni(-15, 10) * kDeg;
    } else if (pose < 0.8) {  // walking / running: thighs swing, knees flex
      const double swing = r.uni(-45, 45);
      a_thigh = t + swing * kDeg;
      a_shin = a_thigh - sit_side * r.uni(0, 110) * kDeg;
    } else {  // sitting / squatting / kicking: thighs raised to one side, shins hanging
      const double raise = r.uni(40, 110);
      a_thigh = t + sit_side * raise * kDeg;
      a_shin = a_thigh - sit_side * r.uni(30, 140) * kDeg;
    }
    J[k] = J[h] + thigh * fore() * dir(a_thigh);
    J[a] = J[k] + shin * fore() * dir(a_shin);
  }

  f.arm_w = std::max(2, static_cast<int>(H * r.uni(0.035, 0.065)));
  f.leg_w = std::max(3, static_cast<int>(H * r.uni(0.045, 0.08)));
  f.neck_w = std::max(2, static_cast<int>(H * r.uni(0.03, 0.05)));
  f.short_sleeves = r.chance(0.4);
  f.shorts = r.chance(0.25);
  f.shirt = random_material(r);
  f.trousers = random_material(r);
  f.skin = skin_colour(r);
  f.hair = r.chance(0.8) ? cv::Scalar(r.uni(10, 90), r.uni(5, 60), r.uni(0, 40)) : r.colour();
  f.shoes = r.colour() * 0.4;
  return f;
}

void translate(Figure& f, const cv::Point2d& d) {
  for (auto& p : f.joint) p += d;
}

// Drawing: points at 1/16 px (shift 4) so that the figure sits exactly on its joints.
constexpr int kShift = 4;
cv::Point fix(const cv::Point2d& p) {
  return {cvRound(p.x * 16), cvRound(p.y * 16)};
}

// Paints `m` through a mask drawn by `shape` (in ROI coordinates, shift 4) inside `box`.
template <typename Shape>
void paint(cv::Mat& img, cv::Rect box, const Material& m, Shape shape) {
  box &= cv::Rect(0, 0, img.cols, img.rows);
  if (box.empty()) return;
  cv::Mat roi = img(box);
  const cv::Point2d off(box.x, box.y);
  if (m.pattern == 0) {
    shape(roi, off, m.base);
    return;
  }
  cv::Mat mask = cv::Mat::zeros(box.size(), CV_8U);
  shape(mask, off, cv::Scalar(255));
  cv::Mat tex(box.size(), img.type(), m.base);
  const cv::Point2d d(std::cos(m.angle), std::sin(m.angle)), n(-d.y, d.x);
  const double reach = box.width + box.height;
  // Stripes perpendicular to n (checks: both directions), phase anchored to the image.
  for (int pass = 0; pass < (m.pattern == 2 ? 2 : 1); ++pass) {
    const cv::Point2d a = pass == 0 ? n : d, b = pass == 0 ? d : n;
    const double start = std::floor((off.x * a.x + off.y * a.y - reach) / m.period) * m.period;
    for (double s = start; s < start + 2 * reach + m.period; s += m.period) {
      const cv::Point2d c = a * s - off;
      cv::line(tex, fix(c - b * reach), fix(c + b * reach), m.second,
               std::max(1, static_cast<int>(m.period / 2)), cv::LINE_8, kShift);
    }
  }
  tex.copyTo(roi, mask);
}

cv::Rect around(std::initializer_list<cv::Point2d> pts, double pad) {
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  for (const auto& p : pts) {
    x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
  }
  return cv::Rect(
      cv::Point(static_cast<int>(std::floor(x0 - pad)), static_cast<int>(std::floor(y0 - pad))),
      cv::Point(static_cast<int>(std::ceil(x1 + pad)) + 1,
                static_cast<int>(std::ceil(y1 + pad)) + 1));
}

void limb(cv::Mat& img, const cv::Point2d& a, const cv::Point2d& b, int width, const Material& m,
          const cv::Scalar& outline) {
  cv::line(img, fix(a), fix(b), outline, width + 2, cv::LINE_AA, kShift);
  paint(img, around({a, b}, width), m,
        [&](cv::Mat& dst, const cv::Point2d& off, const cv::Scalar& c) {
          cv::line(dst, fix(a - off), fix(b - off), c, width, cv::LINE_AA, kShift);
        });
}

// The person's right limbs darker, left limbs lighter: a side cue that holds in unflipped images
// (a flip, which swaps the labels, reverses it; the facing cue survives flips).
cv::Scalar shade(const cv::Scalar& c, int side) {
  return side == 0 ? c * 0.72 : c + (cv::Scalar::all(255) - c) * 0.3;
}

Material shade(Material m, int side) {
  m.base = shade(m.base, side);
  m.second = shade(m.second, side);
  return m;
}

void draw_figure(cv::Mat& img, const Figure& f) {
  const auto& J = f.joint;
  const Material skin{f.skin, f.skin, 0, 8, 0};
  const cv::Scalar outline = f.shirt.base * 0.3;
  // Legs (behind the torso); side 0 is the person's right.
  for (int side = 0; side < 2; ++side) {
    const int h = side ? kLHip : kRHip, k = side ? kLKnee : kRKnee, a = side ? kLAnk : kRAnk;
    const Material trousers = shade(f.trousers, side);
    limb(img, J[h], J[k], f.leg_w, trousers, outline);
    limb(img, J[k], J[a], f.leg_w * 9 / 10 + 1, f.shorts ? shade(skin, side) : trousers, outline);
    cv::circle(img, fix(J[a]), (f.leg_w * 16) * 6 / 10, shade(f.shoes, side), -1, cv::LINE_AA,
               kShift);
  }
  // Torso: a quadrilateral from shoulders to hips, widened a little at the hips.
  const cv::Point2d hip_out = (J[kRHip] - J[kLHip]) * 0.25;
  std::array<cv::Point2d, 4> torso = {J[kRSho], J[kLSho], J[kLHip] - hip_out, J[kRHip] + hip_out};
  {
    std::array<cv::Point, 4> q;
    for (size_t i = 0; i < 4; ++i) q[i] = fix(torso[i]);
    cv::polylines(img, q, true, outline, 2, cv::LINE_AA, kShift);
  }
  paint(img, around({torso[0], torso[1], torso[2], torso[3]}, 2), f.shirt,
        [&](cv::Mat& dst, const cv::Point2d& off, const cv::Scalar& c) {
          std::array<cv::Point, 4> q;
          for (size_t i = 0; i < 4; ++i) q[i] = fix(torso[i] - off);
          cv::fillConvexPoly(dst, q.data(), 4, c, cv::LINE_AA, kShift);
        });
  // Neck and head: an ellipse from the upper neck to the head top; a face when facing us.
  cv::line(img, fix(J[kThorax]), fix(J[kNeck]), f.skin, f.neck_w, cv::LINE_AA, kShift);
  const cv::Point2d hc = (J[kNeck] + J[kTop]) * 0.5, up = (J[kTop] - J[kNeck]) / f.head_len;
  const double angle = std::atan2(up.y, up.x) / kDeg;
  const cv::Size axes(cvRound(f.head_len / 2 * 16), cvRound(f.head_width / 2 * 16));
  cv::ellipse(img, fix(hc), axes, angle, 0, 360, f.front ? f.skin : f.hair, -1, cv::LINE_AA,
              kShift);
  if (f.front) {
    // Hair on the top third, eyes and mouth below it.
    cv::ellipse(img, fix(hc + up * f.head_len * 0.12), axes, angle, -70, 70, f.hair, -1,
                cv::LINE_AA, kShift);
    const cv::Point2d side(-up.y, up.x);
    const int eye = std::max(16, cvRound(f.head_len * 0.07 * 16));
    for (double s : {-1.0, 1.0})
      cv::circle(img, fix(hc + side * s * f.head_width * 0.2 + up * f.head_len * 0.02), eye,
                 cv::Scalar(20, 20, 30), -1, cv::LINE_AA, kShift);
    cv::line(img, fix(hc - up * f.head_len * 0.25 - side * f.head_width * 0.15),
             fix(hc - up * f.head_len * 0.25 + side * f.head_width * 0.15), cv::Scalar(150, 40, 40),
             std::max(1, cvRound(f.head_len * 0.05)), cv::LINE_AA, kShift);
  }
  // Arms (in front of the torso).
  for (int side = 0; side < 2; ++side) {
    const int s = side ? kLSho : kRSho, e = side ? kLElb : kRElb, w = side ? kLWri : kRWri;
    const Material sleeve = shade(f.shirt, side), hand = shade(skin, side);
    limb(img, J[s], J[e], f.arm_w, sleeve, outline);
    limb(img, J[e], J[w], f.arm_w * 9 / 10 + 1, f.short_sleeves ? hand : sleeve, outline);
    cv::circle(img, fix(J[w]), f.arm_w * 16 * 7 / 10, hand.base, -1, cv::LINE_AA, kShift);
  }
}

// An occluder: a rotated rectangle or an ellipse.
struct Occluder {
  cv::RotatedRect shape;
  bool ellipse = false;
  Material material;
  bool covers(const cv::Point2d& p) const {
    const double a = -shape.angle * kDeg;
    const cv::Point2d d = p - cv::Point2d(shape.center);
    const double x = d.x * std::cos(a) - d.y * std::sin(a),
                 y = d.x * std::sin(a) + d.y * std::cos(a);
    const double hx = shape.size.width / 2.0, hy = shape.size.height / 2.0;
    return ellipse ? (x * x) / (hx * hx) + (y * y) / (hy * hy) <= 1
                   : std::abs(x) <= hx && std::abs(y) <= hy;
  }
};

void draw_occluder(cv::Mat& img, const Occluder& o) {
  cv::Point2f v[4];
  o.shape.points(v);
  paint(img, o.shape.boundingRect(), o.material,
        [&](cv::Mat& dst, const cv::Point2d& off, const cv::Scalar& c) {
          if (o.ellipse) {
            cv::ellipse(dst, fix(cv::Point2d(o.shape.center) - off),
                        cv::Size(cvRound(o.shape.size.width * 8), cvRound(o.shape.size.height * 8)),
                        o.shape.angle, 0, 360, c, -1, cv::LINE_AA, kShift);
          } else {
            std::array<cv::Point, 4> q;
            for (int i = 0; i < 4; ++i) q[i] = fix(cv::Point2d(v[i]) - off);
            cv::fillConvexPoly(dst, q.data(), 4, c, cv::LINE_AA, kShift);
          }
        });
}

struct Scene {
  Figure person;
  std::vector<Figure> distractors;
  std::vector<Occluder> occluders;
  cv::Scalar bg0, bg1;
  bool bg_vertical = true;
  uint64_t clutter_seed = 0;
  Annotation annotation;
};

Scene make_scene(uint64_t seed, size_t i, const SyntheticOptions& o) {
  Rng r(sample_rng(seed, 0x5917ea11, i));
  const double S = o.image_size;
  Scene sc;
  sc.bg0 = r.colour();
  sc.bg1 = r.colour();
  sc.bg_vertical = r.chance(0.5);
  sc.clutter_seed = static_cast<uint64_t>(r.uni(0, 1) * 9.0e15);

  // The person: height 50–85% of the image, body box centred near the image centre.
  Figure& f = sc.person;
  f = make_figure(r, S * r.uni(0.5, 0.85), o.back_facing_prob);
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  for (const auto& p : f.joint)
    x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
  cv::Point2d shift = cv::Point2d(S / 2, S / 2) - cv::Point2d((x0 + x1) / 2, (y0 + y1) / 2) +
                      cv::Point2d(r.normal(0, 0.04 * S), r.normal(0, 0.04 * S));
  if (r.chance(o.truncation_prob)) shift += dir(r.uni(0, 2 * M_PI)) * r.uni(0.25, 0.45) * S;
  translate(f, shift);
  x0 += shift.x, x1 += shift.x, y0 += shift.y, y1 += shift.y;

  // Distractors: other people, mostly off-centre, drawn behind the person.
  const int nd = r.integer(0, o.max_distractors);
  for (int k = 0; k < nd; ++k) {
    Figure d = make_figure(r, f.height * r.uni(0.5, 1.05), o.back_facing_prob);
    const cv::Point2d at =
        cv::Point2d(S / 2, S / 2) + dir(r.uni(0, 2 * M_PI)) * r.uni(0.4, 0.7) * S;
    translate(d, at - (d.joint[kPelvis] + d.joint[kThorax]) * 0.5);
    sc.distractors.push_back(d);
  }
  // Occluders over a random joint of the person.
  if (r.chance(o.occluder_prob)) {
    const int n = r.integer(1, 2);
    for (int k = 0; k < n; ++k) {
      Occluder oc;
      const cv::Point2d at =
          f.joint[static_cast<size_t>(r.integer(0, 15))] +
          cv::Point2d(r.normal(0, 0.05 * f.height), r.normal(0, 0.05 * f.height));
      oc.shape = cv::RotatedRect(at,
                                 cv::Size2f(static_cast<float>(f.height * r.uni(0.1, 0.28)),
                                            static_cast<float>(f.height * r.uni(0.1, 0.28))),
                                 static_cast<float>(r.uni(0, 180)));
      oc.ellipse = r.chance(0.4);
      oc.material = random_material(r);
      sc.occluders.push_back(oc);
    }
  }

  Annotation& a = sc.annotation;
  a.image = "synthetic:" + std::to_string(seed) + ":" + std::to_string(i);
  a.index = static_cast<int64_t>(i);
  const double s_raw = f.height / 200;  // MPII: scale ≈ person height / 200
  a.scale = 1.25 * s_raw;
  a.center = {(x0 + x1) / 2, (y0 + y1) / 2 + 15 * s_raw};
  a.normalize = 0.6 * std::sqrt(2.0) * f.head_len;  // head box ≈ head_len square
  const cv::Point2d down = f.joint[kPelvis] - f.joint[kThorax];
  a.torso_angle = std::atan2(down.x, down.y) / kDeg;
  a.joints.resize(16);
  for (size_t k = 0; k < 16; ++k) {
    Keypoint& p = a.joints[k];
    p.pos = f.joint[k];
    p.present = p.pos.x >= 0 && p.pos.y >= 0 && p.pos.x <= S - 1 && p.pos.y <= S - 1;
    bool hidden = false;
    for (const auto& oc : sc.occluders) hidden = hidden || oc.covers(p.pos);
    p.visible = p.present && !hidden;
  }
  return sc;
}

void draw_background(cv::Mat& img, const Scene& sc, const SyntheticOptions& o) {
  // A two-colour gradient, then clutter: blobs, boxes, textured patches and limb-like bars.
  cv::Mat g(2, 2, CV_8UC3);
  const cv::Scalar a = sc.bg0, b = sc.bg1;
  auto px = [](const cv::Scalar& s) {
    return cv::Vec3b(cv::saturate_cast<uchar>(s[0]), cv::saturate_cast<uchar>(s[1]),
                     cv::saturate_cast<uchar>(s[2]));
  };
  g.at<cv::Vec3b>(0, 0) = px(a);
  g.at<cv::Vec3b>(1, 1) = px(b);
  g.at<cv::Vec3b>(0, 1) = px(sc.bg_vertical ? a : b);
  g.at<cv::Vec3b>(1, 0) = px(sc.bg_vertical ? b : a);
  cv::resize(g, img, img.size(), 0, 0, cv::INTER_LINEAR);
  Rng r(std::mt19937_64(sc.clutter_seed));
  const double S = img.cols;
  const int n = r.integer(o.clutter / 2, o.clutter * 3 / 2);
  for (int k = 0; k < n; ++k) {
    const cv::Point2d c(r.uni(-0.1, 1.1) * S, r.uni(-0.1, 1.1) * S);
    const double size = S * r.uni(0.03, 0.3);
    const double kind = r.uni(0, 1);
    Material m = random_material(r);
    if (kind < 0.3) {
      Occluder blob{cv::RotatedRect(c, cv::Size2f(float(size), float(size * r.uni(0.3, 1))),
                                    float(r.uni(0, 180))),
                    r.chance(0.5), m};
      draw_occluder(img, blob);
    } else if (kind < 0.65) {
      // Limb-like bars, sometimes skin-coloured: the network must not take any bar for an arm.
      const cv::Point2d e = c + dir(r.uni(0, 2 * M_PI)) * size;
      if (r.chance(0.3)) m = Material{skin_colour(r), {}, 0, 8, 0};
      limb(img, c, e, std::max(2, int(S * r.uni(0.015, 0.05))), m, m.base * 0.3);
    } else if (kind < 0.85) {
      cv::circle(img, fix(c), cvRound(size * 8), m.base, -1, cv::LINE_AA, kShift);
    } else {
      cv::line(img, fix(c), fix(c + dir(r.uni(0, 2 * M_PI)) * S), m.base,
               std::max(1, int(r.uni(1, 4))), cv::LINE_AA, kShift);
    }
  }
}

}  // namespace

SyntheticDataset::SyntheticDataset(size_t num_samples, uint64_t seed, SyntheticOptions options)
    : num_samples_(num_samples), seed_(seed), options_(options), joints_(mpii_joints()) {
  joints_.name = "synthetic";
  if (options_.image_size < 32)
    throw std::invalid_argument("synthetic image size must be >= 32, got " +
                                std::to_string(options_.image_size));
}

Annotation SyntheticDataset::annotation(size_t i) const {
  if (i >= num_samples_)
    throw std::out_of_range("synthetic sample " + std::to_string(i) + " out of range (size " +
                            std::to_string(num_samples_) + ")");
  return make_scene(seed_, i, options_).annotation;
}

cv::Mat SyntheticDataset::image(size_t i) const {
  cv::Mat img;
  load(i, img);
  return img;
}

Annotation SyntheticDataset::load(size_t i, cv::Mat& img, int, int* applied) const {
  if (applied) *applied = 1;
  if (i >= num_samples_) annotation(i);  // throws the range error
  Scene sc = make_scene(seed_, i, options_);
  img.create(options_.image_size, options_.image_size, CV_8UC3);
  draw_background(img, sc, options_);
  for (const auto& d : sc.distractors) draw_figure(img, d);
  draw_figure(img, sc.person);
  for (const auto& oc : sc.occluders) draw_occluder(img, oc);
  return sc.annotation;
}

std::string SyntheticDataset::describe() const {
  return "synthetic: seed " + std::to_string(seed_) + ", " +
         runtime::count(static_cast<int64_t>(num_samples_), "sample") + " of " +
         std::to_string(options_.image_size) + "², 16 MPII joints";
}

}  // namespace hg::data
