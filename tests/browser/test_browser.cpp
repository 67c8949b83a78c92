// The page of `hourglass serve` in a real browser: headless Chromium driven by chromedriver over
// its HTTP WebDriver API (no browser download), its webcam faked from the shared real video.
// Registered only where Debian's chromium and chromium-driver are installed.
#include "hg/serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kData = HG_TEST_DATA;
const std::string kModel = kData + "/fixtures/posenet_s2_f64_checkpoint.pt";
const std::string kImage = kData + "/mpii/images/005808361.jpg";
const fs::path kOut = fs::path(HG_BUILD_DIR) / "browser";

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t n = sizeof(a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(s);
  return ntohs(a.sin_port);
}

// The first `frames` frames of `video`, at most 640 wide, as YUV4MPEG2 (4:2:0), the format
// Chromium's fake capture device reads.
void write_y4m(const std::string& video, const fs::path& out, int frames) {
  cv::VideoCapture cap(video);
  ASSERT_TRUE(cap.isOpened()) << video;
  std::ofstream y4m(out, std::ios::binary);
  cv::Mat bgr, yuv;
  for (int k = 0; k < frames && cap.read(bgr); ++k) {
    const double f = std::min(1.0, 640.0 / bgr.cols);
    cv::resize(bgr, bgr, cv::Size(int(bgr.cols * f) / 2 * 2, int(bgr.rows * f) / 2 * 2));
    if (k == 0) y4m << "YUV4MPEG2 W" << bgr.cols << " H" << bgr.rows << " F25:1 Ip A1:1 C420jpeg\n";
    cv::cvtColor(bgr, yuv, cv::COLOR_BGR2YUV_I420);
    y4m << "FRAME\n";
    y4m.write(reinterpret_cast<const char*>(yuv.data), static_cast<std::streamsize>(yuv.total()));
  }
}

std::string base64_decode(const std::string& in) {
  std::string out;
  int bits = 0, value = 0;
  for (char ch : in) {
    const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* at = std::strchr(table, ch);
    if (ch == '=' || ch == '\0' || !at) continue;
    value = (value << 6) | int(at - table);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((value >> bits) & 0xFF);
    }
  }
  return out;
}

// One chromedriver and one headless Chromium session on it.
class Browser {
 public:
  explicit Browser(const fs::path& fake_video) : port_(free_port()), driver_("127.0.0.1", port_) {
    driver_pid_ = ::fork();
    if (driver_pid_ == 0) {
      const std::string flag = "--port=" + std::to_string(port_);
      ::execl(HG_CHROMEDRIVER, HG_CHROMEDRIVER, flag.c_str(), "--silent", nullptr);
      ::_exit(127);
    }
    driver_.set_read_timeout(120);
    for (int i = 0; i < 300; ++i) {
      if (auto r = driver_.Get("/status"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    fs::remove_all(profile_);
    const json args = {"--headless",
                       "--no-sandbox",
                       "--disable-gpu",
                       "--disable-quic",
                       "--no-first-run",
                       "--disable-background-networking",
                       "--disable-component-update",
                       "--disable-sync",
                       "--disable-dev-shm-usage",
                       "--window-size=1280,900",
                       "--user-data-dir=" + profile_.string(),
                       "--use-fake-device-for-media-stream",
                       "--use-fake-ui-for-media-stream",
                       "--use-file-for-fake-video-capture=" + fake_video.string()};
    const json caps = {{"capabilities",
                        {{"alwaysMatch",
                          {{"browserName", "chrome"},
                           {"goog:chromeOptions", {{"binary", HG_CHROMIUM}, {"args", args}}}}}}}};
    const auto r = command("POST", "/session", caps);
    session_ = r["value"]["sessionId"].get<std::string>();
  }
  ~Browser() {
    if (!session_.empty()) driver_.Delete(("/session/" + session_).c_str());
    ::kill(driver_pid_, SIGTERM);
    ::waitpid(driver_pid_, nullptr, 0);
    std::error_code ignored;
    fs::remove_all(profile_, ignored);
  }

  json command(const std::string& method, const std::string& path, const json& body = json()) {
    httplib::Result r = method == "GET"
                            ? driver_.Get(path.c_str())
                            : driver_.Post(path.c_str(), body.dump(), "application/json");
    if (!r) throw std::runtime_error("chromedriver did not answer " + path);
    auto j = json::parse(r->body);
    if (r->status != 200) throw std::runtime_error("chromedriver: " + path + ": " + r->body);
    return j;
  }
  json session(const std::string& method, const std::string& path, const json& body = json()) {
    return command(method, "/session/" + session_ + path, body)["value"];
  }
  json script(const std::string& js) {
    return session("POST", "/execute/sync", {{"script", js}, {"args", json::array()}});
  }
  // Polls `condition` (a JavaScript expression) until true; false after `seconds`.
  bool wait_for(const std::string& condition, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (script("return !!(" + condition + ");").get<bool>()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string element(const std::string& css) {
    const auto v = session("POST", "/element", {{"using", "css selector"}, {"value", css}});
    return v.begin().value().get<std::string>();
  }
  void screenshot(const fs::path& path) {
    std::ofstream(path, std::ios::binary) << base64_decode(session("GET", "/screenshot"));
  }

 private:
  int port_;
  httplib::Client driver_;
  pid_t driver_pid_ = -1;
  std::string session_;
  const fs::path profile_ = kOut / ("profile-" + std::to_string(::getpid()));
};

TEST(Browser, UploadDrawsTheApisJointsAndTheWebcamRunsLive) {
  fs::create_directories(kOut);
  const fs::path fake = kOut / "fake_webcam.y4m";
  write_y4m(kData + "/video/posetrack_000001.mp4", fake, 50);

  hg::infer::PredictorOptions p;
  p.input_size = 128;
  hg::serve::ServerOptions o;
  o.port = 0;
  hg::serve::Server server(kModel, p, o);
  const int port = server.bind();
  std::thread running([&] { server.run(); });
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";

  // What the API answers for the image, with the page's default options.
  httplib::Client api("127.0.0.1", port);
  api.set_read_timeout(60);
  std::ifstream in(kImage, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto answer = api.Post("/v1/pose?flip=1", bytes, "image/jpeg");
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->status, 200);
  const auto expected = json::parse(answer->body)["results"][0]["people"];
  ASSERT_FALSE(expected.empty());

  {
    Browser browser(fake);
    browser.session("POST", "/url", {{"url", url}});
    ASSERT_TRUE(browser.wait_for("window.hg && window.hg.model", 30));
    EXPECT_EQ(browser.script("return document.getElementById('stack').options.length;"), 2);

    const auto file = browser.element("#file");
    browser.session("POST", "/element/" + file + "/value", {{"text", kImage}});
    ASSERT_TRUE(browser.wait_for("window.hg.uploads >= 1 || window.hg.errors > 0", 60));
    ASSERT_EQ(browser.script("return window.hg.errors;"), 0)
        << browser.script("return document.getElementById('status').textContent;");
    // The points drawn are the API's, for the final stack and then for the first one.
    for (const int stack : {1, 0}) {
      browser.script("const s = document.getElementById('stack'); s.value = " +
                     std::to_string(stack) + "; s.dispatchEvent(new Event('change'));");
      const auto drawn = browser.script("return window.hg.drawn;");
      ASSERT_EQ(drawn.size(), expected.size());
      for (size_t k = 0; k < expected.size(); ++k)
        for (int j = 0; j < 16; ++j)
          for (int v = 0; v < 2; ++v)
            EXPECT_NEAR(drawn[k][j][v].get<double>(),
                        expected[k]["stacks"][stack][j][v].get<double>(), 1e-3);
    }
    EXPECT_EQ(browser.script("return document.querySelectorAll('#scores tr').length;"), 17);
    browser.script(
        "const s = document.getElementById('stack'); s.value = 1;"
        "s.dispatchEvent(new Event('change'));");
    browser.screenshot(kOut / "serve_upload.png");

    // The fake webcam: frames go to the server and come back drawn, with a frame rate.
    browser.session("POST", "/element/" + browser.element("#webcam") + "/click", json::object());
    ASSERT_TRUE(browser.wait_for("window.hg.drawnFrames >= 5 || window.hg.errors > 0", 120))
        << browser.script("return document.getElementById('status').textContent;");
    EXPECT_EQ(browser.script("return window.hg.errors;"), 0);
    EXPECT_GE(browser.script("return window.hg.frames;").get<int>(), 5);
    EXPECT_GT(browser.script("return window.hg.fps;").get<double>(), 0);
    EXPECT_NE(browser.script("return document.getElementById('status').textContent;")
                  .get<std::string>()
                  .find("fps"),
              std::string::npos);
    EXPECT_FALSE(browser.script("return window.hg.drawn;").empty());
    browser.screenshot(kOut / "serve_webcam.png");
  }
  server.stop();
  running.join();
}

}  // namespace
