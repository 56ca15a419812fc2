#pragma once
// The webhooks' durable queue: one SQLite file of the node (events are the
// node's own, so no other node needs to see them). A post is written here
// before the sender moves on, and deleted once the receiver answered 2xx, so
// a post pending at a crash or a stop goes out after the restart. Bounded:
// past `capacity` entries the oldest are dropped (and counted).
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "Core/Store/SqliteFile.h"

namespace CloudIngest {

struct WebhookPost {
  int64_t id = 0;
  std::string url;    // the webhook it is for (its secret is looked up when sent)
  std::string event;  // "study_sent", ...
  std::string body;   // the JSON that is signed and posted
  unsigned attempts = 0;
  double createdAt = 0;
  double nextAttemptAt = 0;
};

class WebhookOutbox {
 public:
  // Throws DatabaseError when the file cannot be opened; a damaged file is
  // moved aside (its posts are lost) and `movedTo` names it.
  WebhookOutbox(const std::string& path, size_t capacity, double now, std::string& movedTo);

  // Returns how many old posts were dropped to make room.
  unsigned Add(const std::string& url, const std::string& event, const std::string& body,
               double now);
  std::optional<WebhookPost> NextDue(double now);
  std::optional<double> NextDueTime();
  void Remove(int64_t id);  // delivered, or given up
  void Retry(int64_t id, unsigned attempts, double nextAttemptAt);
  size_t Size();

 private:
  std::mutex mutex_;
  SqliteHandle db_;
  size_t capacity_;
};

}  // namespace CloudIngest
