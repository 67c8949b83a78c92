#pragma once
// The server's connections under limits that hold before any request is parsed (private to the
// server; see hg/serve/server.h for the API). cpp-httplib 0.11 bounds neither the number of
// header lines nor a chunked body, waits on a trickling client as long as it trickles, and
// gives pipelined requests one answer; its request parser and router are kept, and what reaches
// them is bounded here: each connection reads through a ConnectionStream, and a
// GuardedHttpServer runs the connections.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>

namespace hg::serve {

// What one request on a connection may take.
struct ConnectionLimits {
  size_t max_head_bytes = 16 << 10;  // request line and headers
  size_t max_body_bytes = 16 << 20;  // as sent: a chunked body's framing counts
  int timeout_s = 10;                // for the whole head; then for each read and write
};

// Why a connection's stream stopped reading a request.
enum class Refusal { kNone, kHeadTooLarge, kHeadTimeout, kBodyTooLarge };

// The status and message a refusal is answered with (431, 408, 413).
std::pair<int, std::string> refusal_answer(Refusal why, const ConnectionLimits& limits);

// The JSON body of every answer other than 200: {"error": why, "status": status}.
std::string error_body(int status, const std::string& why);

// The requests answered at once: a connection whose request head is complete takes a slot
// (waiting in line for one), and gives it back when its answer is written.
class AnswerSlots {
 public:
  explicit AnswerSlots(int slots) : free_(slots) {}
  void take();
  void give_back();

 private:
  std::mutex mutex_;
  std::condition_variable freed_;
  int free_;
};

// A socket read through its own buffer, which outlives each request (pipelined requests keep
// their bytes), counting what each request consumes: the head must end ("\r\n\r\n") within
// max_head_bytes and timeout_s of the request's start, the body within max_body_bytes. Past a
// limit, read() fails and refusal() says why. When the head is complete, read() takes an answer
// slot first; end_request() gives it back.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int sock, const ConnectionLimits& limits, AnswerSlots& slots);
  ~ConnectionStream() override { end_request(); }

  // A new request: counts and the head's deadline start now.
  void begin_request();
  void end_request();
  Refusal refusal() const { return refusal_; }
  size_t written() const { return written_; }
  // Still waiting for this request's head (idle, or its head in progress).
  bool waiting() const { return waiting_; }
  // Some of this request's head has arrived.
  bool started() const { return head_ > 0; }
  // When this request began (steady clock ticks; read from other threads).
  int64_t since() const { return since_; }

  // Bytes are buffered, or arrive within the wait (up to the head's deadline while waiting for
  // a request); false on timeout or close.
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  int socket() const override { return sock_; }

 private:
  bool fill();                    // reads into the buffer; false on close, error or timeout
  bool readable_in_time() const;  // waits for bytes, a head until its deadline; false if none
  int wait_ms() const;            // what the next wait for bytes may take
  size_t consume(size_t n);       // counts n buffered bytes against the limits; how many it takes

  int sock_;
  ConnectionLimits limits_;
  AnswerSlots& slots_;
  bool holding_ = false;  // an answer slot
  char buffer_[4096];
  size_t begin_ = 0, end_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<int64_t> since_{0};
  std::atomic<bool> waiting_{true};
  size_t head_ = 0, body_ = 0, written_ = 0;
  uint32_t last4_ = 0;  // the head's last four bytes, for its end
  Refusal refusal_ = Refusal::kNone;
};

// httplib's server with each connection on its own thread, read through a ConnectionStream:
// heads arrive in parallel, and only complete requests wait in line for the `answering` slots.
// At most `max_connections` are open: one more displaces the connection that has waited longest
// for a complete request, or, when every one has a complete request, is answered 503. stop_now()
// also drops every waiting connection, so that a trickling client cannot hold the shutdown.
class GuardedHttpServer : public httplib::Server {
 public:
  GuardedHttpServer();
  void limit(const ConnectionLimits& limits, int answering, int max_connections);
  void stop_now();
  // After binding: a listen queue of SOMAXCONN instead of httplib's 5, so that a burst of
  // connections is accepted, not left to the clients' SYN retries (seconds each).
  void widen_listen_queue();
  // The refusal of the request this thread is reading (for the error handler), kNone if none.
  static Refusal current_refusal();
  const ConnectionLimits& limits() const { return limits_; }
  int max_connections() const { return max_connections_; }
  // Drops the connection that has waited longest for a complete request; false if none waits.
  bool drop_longest_waiting();

 private:
  bool process_and_close_socket(int sock) override;
  bool enter(ConnectionStream& s);  // registers a connection; false when stopping
  void leave(ConnectionStream& s);
  void serve(ConnectionStream& stream);

  ConnectionLimits limits_;
  int max_connections_ = 256;
  std::unique_ptr<AnswerSlots> slots_;
  std::mutex mutex_;
  std::list<ConnectionStream*> open_;
  bool stopping_ = false;
};

}  // namespace hg::serve
