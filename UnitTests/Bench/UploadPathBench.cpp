// Callgrind driver for the per-instance upload path: one StudySender run over
// FakeStudySource + FakeCloud (no network, no Orthanc), with the real queue
// (SQLite) and audit log in a temporary folder. Run it under
//   valgrind --tool=callgrind UploadPathBench N [SIZE_BYTES] [CONCURRENCY]
// for two values of N: (Ir(N2) - Ir(N1)) / (N2 - N1) is the instruction count
// per instance with the fixed costs (start-up, order, metadata) cancelled out.
// Resources/benchmark.py does exactly that. Exits non-zero unless the study
// was sent whole.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "Core/Audit/AuditLog.h"
#include "Core/Cloud/IngestClient.h"
#include "Core/Cloud/TokenProvider.h"
#include "Core/Sending/RetryPolicy.h"
#include "Core/Sending/StudySender.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Fakes/FakeCloud.h"
#include "Fakes/FakeStudySource.h"
#include "Fakes/TempDir.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

class QuietLogger : public ILogger {
 public:
  void Info(const std::string&) override {}
  void Warning(const std::string& m) override { std::fprintf(stderr, "warning: %s\n", m.c_str()); }
  void Error(const std::string& m) override { std::fprintf(stderr, "error: %s\n", m.c_str()); }
};

// Removes the scratch folder on every exit path.
using ScratchDir = CloudIngest::Testing::TempDir;

unsigned long ParseCount(const char* text, const char* what, unsigned long max) {
  char* end = nullptr;
  const unsigned long value = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || value == 0 || value > max) {
    throw std::invalid_argument(std::string(what) + " must be a whole number from 1 to " +
                                std::to_string(max));
  }
  return value;
}

int Run(unsigned instances, size_t size, unsigned concurrency) {
  const ScratchDir dir("upload-bench");
  Configuration config;
  config.url = "http://127.0.0.1:9";
  config.tokenUrl = config.url + "/auth/token";
  config.clientId = "bench-client";
  config.clientSecret = "bench-secret";
  config.allowedUploadHosts = {"127.0.0.1"};
  config.concurrency = concurrency;
  config.auditLog = dir.Path() + "/audit.jsonl";
  config.database = dir.Path() + "/queue.db";

  FakeCloud cloud;
  FakeStudySource source;
  source.AddStudy("bench-study", "1.2.826.0.1.3680043.10.999.1", instances, size);
  SystemClock clock;
  QuietLogger log;
  StopSignal stop;
  SqliteStudyStore queue(config.database);
  AuditLog audit(config.auditLog);
  TokenProvider tokens(
      TokenSettings{config.tokenUrl, "GET", config.clientId, config.clientSecret, config.scope},
      cloud, clock);
  IngestClient client(config, cloud, tokens);
  RetryPolicy retry(config.retry, 1);

  EnqueueRequest request;
  request.orthancId = "bench-study";
  queue.Enqueue(request, clock.Now());
  const auto claimed = queue.ClaimNext(clock.Now() + 1);
  if (!claimed) {
    std::fprintf(stderr, "the queue did not hand out the study\n");
    return 1;
  }
  MemoryBudget memory(config.maxMemory);
  ThreadStarter threads(log);
  StudySender sender(SenderDependencies{config, source, client, queue, audit, retry, clock, log,
                                        stop, nullptr, memory, threads});
  const SendOutcome outcome = sender.Run(*claimed);
  const size_t stored = cloud.Stored().size();
  std::printf(
      "{\"instances\": %u, \"size\": %zu, \"concurrency\": %u, \"outcome\": \"%s\", "
      "\"stored\": %zu}\n",
      instances, size, concurrency, ToString(outcome), stored);
  return outcome == SendOutcome::Sent && stored == instances ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s INSTANCES [SIZE_BYTES=10240] [CONCURRENCY=1]\n", argv[0]);
    return 2;
  }
  try {
    const auto instances = static_cast<unsigned>(ParseCount(argv[1], "INSTANCES", 1000000));
    const size_t size = argc > 2 ? ParseCount(argv[2], "SIZE_BYTES", 64ul << 20) : 10240;
    const auto concurrency =
        static_cast<unsigned>(argc > 3 ? ParseCount(argv[3], "CONCURRENCY", 64) : 1);
    return Run(instances, size, concurrency);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "UploadPathBench: %s\n", e.what());
    return 2;
  }
}
