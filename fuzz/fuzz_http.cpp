// The server's request handling: the input is sent as raw bytes over a socket to the server's
// own connection layer (GuardedHttpServer: head and body limits, pipelining) on 127.0.0.1, whose
// POST /v1/pose reads the request as `hourglass serve` does (content type, multipart parts,
// boxes, query, image header and decoding, the crops), everything but the network and the HOG
// detector (too slow per input). Every answer echoes what it refuses as the server does (JSON
// text, path and message included), so bytes that are not UTF-8 anywhere in a request reach
// the JSON writer. An answer other than 200 or the 4xx/5xx of an HttpError (any other
// exception: the real server's 500) is a finding.
#include "../src/serve/connections.h"
#include "../src/serve/request.h"
#include "hg/data/sample.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

void answer(httplib::Response& res, int status, const std::string& why) {
  res.status = status;
  res.set_content(hg::serve::error_body(status, why), "application/json");
}

struct Harness {
  hg::serve::GuardedHttpServer http;
  int port = 0;
  std::thread thread;

  Harness() {
    http.limit({4096, size_t{1} << 20, 2}, 4, 16);
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
          try {
            std::rethrow_exception(e);
          } catch (const hg::serve::HttpError& err) {
            answer(res, err.status, err.what());
          } catch (const std::exception& err) {
            std::fprintf(stderr, "fuzz_http: the handler threw %s\n", err.what());
            std::abort();
          }
        });
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          const auto refused = hg::serve::GuardedHttpServer::current_refusal();
          if (refused != hg::serve::Refusal::kNone) {
            const auto [status, why] = hg::serve::refusal_answer(refused, http.limits());
            answer(res, status, why);
          } else {
            answer(res, res.status, "no such endpoint: " + req.method + " " + req.path);
          }
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.Post("/v1/pose", [](const httplib::Request& req, httplib::Response& res) {
      auto r = hg::serve::read_pose_request(req, {true, 2, 64, 16});
      const cv::Mat rgb = hg::serve::decode_request_image(*r.image, 4'000'000);
      if (!r.has_boxes)
        r.people = {{hg::infer::crop_of_image(rgb.size()), hg::infer::PersonSource::kWholeImage}};
      for (auto& p : r.people) hg::data::crop_input(rgb, p.crop, 64);
      res.set_content("ok", "text/plain");
    });
    port = http.bind_to_any_port("127.0.0.1");
    if (port <= 0) std::abort();
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::yield();
  }
  ~Harness() {
    http.stop_now();
    thread.join();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness harness;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(harness.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Closing with a reset leaves no TIME_WAIT behind: thousands of connections a second would
  // otherwise use up the ephemeral ports within a minute.
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  // libFuzzer's timer (SIGALRM each second) interrupts system calls: EINTR is no error here.
  int connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (connected != 0 && errno == EINTR) {  // the connection goes on; wait for its outcome
    pollfd w{fd, POLLOUT, 0};
    while (::poll(&w, 1, 5000) < 0 && errno == EINTR) {
    }
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    connected = error == 0 ? 0 : -1;
  }
  if (connected != 0) {
    std::fprintf(stderr, "fuzz_http: cannot connect to 127.0.0.1:%d (errno %d)\n", harness.port,
                 errno);
    std::abort();
  }
  for (size_t sent = 0; sent < size;) {
    const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early (e.g. a body over the limit)
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  // Read the answer(s) until the server closes; a server that answers nothing within 5 s hangs.
  char buffer[4096];
  pollfd p{fd, POLLIN, 0};
  while (true) {
    const int ready = ::poll(&p, 1, 5000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      std::fprintf(stderr, "fuzz_http: no answer within 5 s (poll: %d, errno %d)\n", ready, errno);
      std::abort();
    }
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
  }
  ::close(fd);
  return 0;
}
