#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "Core/Hashes.h"
#include "Core/Sending/UploadModes.h"

namespace CloudIngest {

namespace {

// Reading holds the file three times for a moment (Orthanc's answer, the
// SDK's buffer, ours): measured with the benchmark's large-instance run.
constexpr uint64_t kCopiesWhileReading = 3;

const char* const kDicomContentType = "application/dicom";

std::string DicomFilename(const InstanceInfo& instance) {
  return instance.sopInstanceUid + ".dcm";
}

// Upload threads take the next instance in turn; the first error stops them
// all and is thrown once they are joined.
class InstanceUploads {
 public:
  InstanceUploads(AttemptState& attempt, Uploader& uploader,
                  const std::vector<InstanceInfo>& instances)
      : attempt_(attempt), uploader_(uploader), instances_(instances) {}

  void Run() {
    attempt_.progress.MarkActive();
    const size_t threads =
        std::max<size_t>(1, std::min<size_t>(attempt_.connections, instances_.size()));
    // This thread is one of them; the others may be fewer if the system refuses some.
    std::vector<std::thread> pool = attempt_.deps.threads.Start(
        threads - 1, [this] { Work(); }, "the uploads of study " + attempt_.record.orthancId,
        {"ci-upload", ThreadLifetime::Attempt});
    Work();
    for (auto& t : pool) t.join();
    if (firstError_) std::rethrow_exception(firstError_);
  }

 private:
  void Work() {
    UrlAskedAhead ahead;  // the URL of `index`, asked during the previous PUT
    size_t index = next_.fetch_add(1);
    while (index < instances_.size() && !abort_.load()) {
      const size_t following = next_.fetch_add(1);
      UrlAskedAhead nextAhead;
      // A de-identified file's size is known only once read: no URL asked ahead for it.
      if (following < instances_.size() && attempt_.pseudonymousStudyInstanceUid.empty()) {
        nextAhead = AskAhead(instances_[following]);
      }
      try {
        UploadOne(instances_[index], ahead);
      } catch (...) {
        std::lock_guard<std::mutex> lock(errorMutex_);
        if (!firstError_) firstError_ = std::current_exception();
        abort_ = true;
      }
      ahead = std::move(nextAhead);
      index = following;
    }
  }

  // Asked with the size Orthanc listed.
  UrlAskedAhead AskAhead(const InstanceInfo& instance) {
    return uploader_.AskAhead(
        uploader_.UrlRequest(DicomFilename(instance), kDicomContentType, instance.size),
        instance.sopInstanceUid);
  }

  void UploadOne(const InstanceInfo& instance, UrlAskedAhead& ahead) {
    MemoryBudget::Reservation held = attempt_.deps.memory.Reserve(
        kCopiesWhileReading * instance.size, [&] { return attempt_.ShouldStop(); });
    attempt_.ThrowIfStopping();
    auto body =
        std::make_shared<StringBodySource>(attempt_.source->ReadInstance(instance.orthancId));
    held.ShrinkTo(body->Size());
    UploadPayload payload;
    payload.body = body;
    payload.size = body->Size();
    payload.md5Hex = Md5Hex(body->Data());
    payload.sha256Hex = Sha256Hex(body->Data());
    payload.filename = DicomFilename(instance);
    payload.contentType = kDicomContentType;
    payload.sopInstanceUid = instance.sopInstanceUid;
    std::optional<UploadTarget> askedAhead = uploader_.TakeUsable(ahead, payload.size);
    uploader_.PutWithFreshUrl(payload, std::move(askedAhead));
    attempt_.progress.Record(1, payload.size);
  }

  AttemptState& attempt_;
  Uploader& uploader_;
  const std::vector<InstanceInfo>& instances_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> abort_{false};
  std::mutex errorMutex_;
  std::exception_ptr firstError_;
};

}  // namespace

void SendInstances(AttemptState& attempt, Uploader& uploader,
                   const std::vector<InstanceInfo>& instances) {
  InstanceUploads(attempt, uploader, instances).Run();
}

}  // namespace CloudIngest
