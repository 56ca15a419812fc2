#include "Core/Notify/WebhookOutbox.h"

#include "Core/Store/SqliteStatement.h"

namespace CloudIngest {

namespace {

const char* const kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS webhook_posts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  event TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  next_attempt_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_posts_due ON webhook_posts(next_attempt_at, id);
)SQL";

SqliteHandle Open(const std::string& path, double now, std::string& movedTo) {
  try {
    return OpenSqliteFile(path);
  } catch (const CorruptDatabaseError&) {
    movedTo = MoveCorruptFileAside(path, now);
    return OpenSqliteFile(path);
  }
}

WebhookPost ReadPost(const SqliteStatement& s) {
  WebhookPost post;
  post.id = s.Int(0);
  post.url = s.Text(1);
  post.event = s.Text(2);
  post.body = s.Text(3);
  post.attempts = static_cast<unsigned>(s.Int(4));
  post.createdAt = s.Real(5);
  post.nextAttemptAt = s.Real(6);
  return post;
}

}  // namespace

WebhookOutbox::WebhookOutbox(const std::string& path, size_t capacity, double now,
                             std::string& movedTo)
    : db_(Open(path, now, movedTo)), capacity_(capacity) {
  ExecSql(db_.get(), kSchema, "create the webhook queue in '" + path + "'");
}

unsigned WebhookOutbox::Add(const std::string& url, const std::string& event,
                            const std::string& body, double now) {
  static const std::string op = "webhook queue, add";
  const std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_.get(), true, op);
  SqliteStatement insert(db_.get(),
                         "INSERT INTO webhook_posts(url, event, body, created_at, "
                         "next_attempt_at) VALUES (:url, :event, :body, :now, :now)",
                         op);
  insert.Bind(":url", url).Bind(":event", event).Bind(":body", body).Bind(":now", now).Run();
  SqliteStatement count(db_.get(), "SELECT count(*) FROM webhook_posts", op);
  count.Step();
  const int64_t excess = count.Int(0) - static_cast<int64_t>(capacity_);
  if (excess > 0) {
    SqliteStatement drop(db_.get(),
                         "DELETE FROM webhook_posts WHERE id IN (SELECT id FROM webhook_posts "
                         "ORDER BY id LIMIT :excess)",
                         op);
    drop.Bind(":excess", excess).Run();
  }
  transaction.Commit();
  return excess > 0 ? static_cast<unsigned>(excess) : 0;
}

std::optional<WebhookPost> WebhookOutbox::NextDue(double now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_.get(),
                    "SELECT id, url, event, body, attempts, created_at, next_attempt_at FROM "
                    "webhook_posts WHERE next_attempt_at <= :now ORDER BY next_attempt_at, id "
                    "LIMIT 1",
                    "webhook queue, next");
  s.Bind(":now", now);
  if (!s.Step()) return std::nullopt;
  return ReadPost(s);
}

std::optional<double> WebhookOutbox::NextDueTime() {
  const std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_.get(), "SELECT min(next_attempt_at) FROM webhook_posts",
                    "webhook queue, next time");
  s.Step();
  if (s.IsNull(0)) return std::nullopt;
  return s.Real(0);
}

void WebhookOutbox::Remove(int64_t id) {
  const std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_.get(), "DELETE FROM webhook_posts WHERE id = :id", "webhook queue, remove");
  s.Bind(":id", id).Run();
}

void WebhookOutbox::Retry(int64_t id, unsigned attempts, double nextAttemptAt) {
  const std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_.get(),
                    "UPDATE webhook_posts SET attempts = :attempts, next_attempt_at = :next WHERE "
                    "id = :id",
                    "webhook queue, retry");
  s.Bind(":attempts", static_cast<int64_t>(attempts)).Bind(":next", nextAttemptAt);
  s.Bind(":id", id).Run();
}

size_t WebhookOutbox::Size() {
  const std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_.get(), "SELECT count(*) FROM webhook_posts", "webhook queue, size");
  s.Step();
  return static_cast<size_t>(s.Int(0));
}

}  // namespace CloudIngest
