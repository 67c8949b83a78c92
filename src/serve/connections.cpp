#include "connections.h"

#include "hg/runtime/text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

namespace hg::serve {

namespace {

using Clock = std::chrono::steady_clock;

thread_local const ConnectionStream* current_stream = nullptr;
thread_local bool connection_refused = false;  // over max_connections with none to displace

// Waits up to `ms` for `events` on `sock`, through EINTR: > 0 ready, 0 timed out, < 0 failed.
int poll_for(int sock, short events, int ms) {
  pollfd p{sock, events, 0};
  int n;
  do {
    n = ::poll(&p, 1, ms);
  } while (n < 0 && errno == EINTR);
  return n;
}

bool wait_for(int sock, short events, int ms) {
  return poll_for(sock, events, ms) > 0;
}

void address_of(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  const int r = peer ? ::getpeername(sock, reinterpret_cast<sockaddr*>(&a), &len)
                     : ::getsockname(sock, reinterpret_cast<sockaddr*>(&a), &len);
  ip.clear();
  port = 0;
  if (r != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    port = ntohs(v6->sin6_port);
  }
  ip = text;
}

const char* reason_of(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Bad Request";
  }
}

}  // namespace

std::string error_body(int status, const std::string& why) {
  return runtime::json_text({{"error", why}, {"status", status}});
}

std::pair<int, std::string> refusal_answer(Refusal why, const ConnectionLimits& limits) {
  switch (why) {
    case Refusal::kHeadTooLarge:
      return {431, "the request line and headers are larger than the server's limit of " +
                       std::to_string(limits.max_head_bytes) + " bytes"};
    case Refusal::kHeadTimeout:
      return {408, "the request line and headers did not arrive within " +
                       std::to_string(limits.timeout_s) + " s (the server's timeout)"};
    case Refusal::kBodyTooLarge:
      return {413, "the body is larger than the server's limit of " +
                       std::to_string(limits.max_body_bytes) + " bytes (max_body_bytes)"};
    case Refusal::kNone:
      break;
  }
  return {400, "bad request"};
}

void AnswerSlots::take() {
  std::unique_lock<std::mutex> lock(mutex_);
  freed_.wait(lock, [this] { return free_ > 0; });
  --free_;
}

void AnswerSlots::give_back() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++free_;
  }
  freed_.notify_one();
}

ConnectionStream::ConnectionStream(int sock, const ConnectionLimits& limits, AnswerSlots& slots)
    : sock_(sock), limits_(limits), slots_(slots) {
  begin_request();
}

void ConnectionStream::end_request() {
  if (holding_) slots_.give_back();
  holding_ = false;
}

void ConnectionStream::begin_request() {
  const auto now = Clock::now();
  since_ = now.time_since_epoch().count();
  deadline_ = now + std::chrono::seconds(limits_.timeout_s);
  waiting_ = true;
  head_ = body_ = written_ = 0;
  last4_ = 0;
  refusal_ = Refusal::kNone;
}

int ConnectionStream::wait_ms() const {
  const auto full = std::chrono::milliseconds(1000LL * limits_.timeout_s);
  if (!waiting_) return static_cast<int>(full.count());
  // Rounded up: a wait cut short by the rounding would end before the deadline it waits for.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
  return static_cast<int>(std::clamp(left, std::chrono::milliseconds(0), full).count());
}

bool ConnectionStream::readable_in_time() const {
  // A head's wait lasts until its deadline has passed, however early poll returns.
  for (;;) {
    const int ready = poll_for(sock_, POLLIN, wait_ms());
    if (ready != 0) return ready > 0;
    if (!waiting_ || Clock::now() >= deadline_) return false;
  }
}

bool ConnectionStream::is_readable() const {
  return begin_ < end_ || readable_in_time();
}

bool ConnectionStream::is_writable() const {
  return wait_for(sock_, POLLOUT, 1000 * limits_.timeout_s);
}

bool ConnectionStream::fill() {
  if (!readable_in_time()) {
    if (waiting_) refusal_ = Refusal::kHeadTimeout;
    return false;
  }
  ssize_t n;
  do {
    n = ::recv(sock_, buffer_, sizeof buffer_, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  begin_ = 0;
  end_ = static_cast<size_t>(n);
  return true;
}

size_t ConnectionStream::consume(size_t n) {
  if (!waiting_) {
    body_ += n;
    if (body_ > limits_.max_body_bytes) refusal_ = Refusal::kBodyTooLarge;
    return n;
  }
  // The head ends at its first "\r\n\r\n": the bytes after it are the body's.
  for (size_t i = 0; i < n; ++i) {
    last4_ = (last4_ << 8) | static_cast<unsigned char>(buffer_[begin_ + i]);
    if (++head_ > limits_.max_head_bytes) {
      refusal_ = Refusal::kHeadTooLarge;
      return 0;
    }
    if (last4_ == 0x0d0a0d0a) {
      waiting_ = false;
      slots_.take();  // a complete request waits in line here for its turn to be answered
      holding_ = true;
      return i + 1;
    }
  }
  return n;
}

ssize_t ConnectionStream::read(char* ptr, size_t size) {
  if (refusal_ != Refusal::kNone) return -1;
  if (begin_ == end_ && !fill()) return -1;
  const size_t n = consume(std::min(size, end_ - begin_));
  if (refusal_ != Refusal::kNone) return -1;
  std::memcpy(ptr, buffer_ + begin_, n);
  begin_ += n;
  return static_cast<ssize_t>(n);
}

ssize_t ConnectionStream::write(const char* ptr, size_t size) {
  if (!is_writable()) return -1;
  ssize_t n;
  do {
    n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n > 0) written_ += static_cast<size_t>(n);
  return n;
}

void ConnectionStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  address_of(sock_, true, ip, port);
}

void ConnectionStream::get_local_ip_and_port(std::string& ip, int& port) const {
  address_of(sock_, false, ip, port);
}

// ---- the server ---------------------------------------------------------------------------------

namespace {

// A thread per connection, started at once: a connection that trickles holds only its own. Past
// max_connections, the one that has waited longest for a complete request is dropped to make
// room; when none waits, the new connection is refused (503).
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(GuardedHttpServer& server) : server_(server) {}
  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = workers_.begin(); it != workers_.end();) {  // the ended ones are joined
      if (!it->done) {
        ++it;
        continue;
      }
      it->thread.join();
      it = workers_.erase(it);
    }
    const bool refused = static_cast<int>(workers_.size()) >= server_.max_connections() &&
                         !server_.drop_longest_waiting();
    auto& w = workers_.emplace_back();
    w.thread = std::thread([&w, refused, fn = std::move(fn)] {
      connection_refused = refused;
      fn();
      w.done = true;
    });
  }
  void shutdown() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& w : workers_) w.thread.join();
    workers_.clear();
  }

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  GuardedHttpServer& server_;
  std::mutex mutex_;
  std::list<Worker> workers_;
};

// A whole answer written on the socket itself: a refusal before httplib has a request to answer.
void write_answer(ConnectionStream& stream, int status, const std::string& message) {
  const std::string body = error_body(status, message);
  const std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) +
                             "\r\nContent-Type: application/json\r\nConnection: close\r\n" +
                             (status == 503 ? "Retry-After: 1\r\n" : "") +
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  stream.write(answer.data(), answer.size());
}

// Closes a connection whose client may still be sending (a refused request): the answer is
// written, so the sending side is shut, and what still arrives is read and dropped for a moment.
// Closing with unread bytes would reset the connection, and the client could lose the answer.
void close_after_refusal(int sock) {
  ::shutdown(sock, SHUT_WR);
  char sink[16384];
  const auto end = Clock::now() + std::chrono::milliseconds(500);
  size_t drained = 0;
  while (drained < (size_t{16} << 20) && wait_for(sock, POLLIN, 100) && Clock::now() < end) {
    const ssize_t n = ::recv(sock, sink, sizeof sink, 0);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

}  // namespace

GuardedHttpServer::GuardedHttpServer() : slots_(std::make_unique<AnswerSlots>(32)) {
  // Many requests per connection (a page polling, a load balancer): its own limits bound each.
  set_keep_alive_max_count(1000);
  new_task_queue = [this] { return new ConnectionThreads(*this); };
}

void GuardedHttpServer::limit(const ConnectionLimits& limits, int answering, int max_connections) {
  limits_ = limits;
  max_connections_ = max_connections;
  slots_ = std::make_unique<AnswerSlots>(answering);
  set_payload_max_length(limits.max_body_bytes);
}

Refusal GuardedHttpServer::current_refusal() {
  return current_stream ? current_stream->refusal() : Refusal::kNone;
}

bool GuardedHttpServer::enter(ConnectionStream& s) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return false;
  open_.push_back(&s);
  return true;
}

void GuardedHttpServer::leave(ConnectionStream& s) {
  std::lock_guard<std::mutex> lock(mutex_);
  open_.remove(&s);
}

bool GuardedHttpServer::drop_longest_waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  ConnectionStream* oldest = nullptr;
  for (auto* s : open_)
    if (s->waiting() && (!oldest || s->since() < oldest->since())) oldest = s;
  // Its thread sees the end of the stream at once and closes it (after leave(), under this lock,
  // so the descriptor is still this connection's).
  if (oldest) ::shutdown(oldest->socket(), SHUT_RDWR);
  return oldest != nullptr;
}

void GuardedHttpServer::widen_listen_queue() {
  ::listen(svr_sock_, SOMAXCONN);  // on a listening socket, Linux takes the new length
}

void GuardedHttpServer::stop_now() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto* s : open_)
      if (s->waiting()) ::shutdown(s->socket(), SHUT_RDWR);
  }
  stop();
}

// Request after request until the client or a limit ends the connection.
void GuardedHttpServer::serve(ConnectionStream& stream) {
  for (size_t left = keep_alive_max_count_; left > 0 && is_running(); --left) {
    stream.begin_request();
    if (!stream.is_readable()) return;
    bool closed = false;
    const bool answered = process_request(stream, left == 1, closed, nullptr);
    stream.end_request();
    const Refusal why = stream.refusal();
    if (why != Refusal::kNone) {
      // Refused before httplib had a request to answer (in its request line): answered here.
      // Either way the rest of the request is unread, so the connection ends.
      if (stream.written() == 0 && stream.started()) {
        const auto [status, message] = refusal_answer(why, limits_);
        write_answer(stream, status, message);
      }
      close_after_refusal(stream.socket());
      return;
    }
    if (!answered || closed) return;
  }
}

bool GuardedHttpServer::process_and_close_socket(int sock) {
  ConnectionStream stream(sock, limits_, *slots_);
  if (connection_refused) {
    write_answer(stream, 503,
                 "the server has " + std::to_string(max_connections_) +
                     " connections open, each with a request in progress: retry in a second");
  } else if (enter(stream)) {
    current_stream = &stream;
    serve(stream);
    current_stream = nullptr;
    leave(stream);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return true;
}

}  // namespace hg::serve
