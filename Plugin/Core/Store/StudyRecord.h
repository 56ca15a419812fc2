#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace CloudIngest {

// The states of a tracked study (docs/REFERENCE.md, REST API).
enum class StudyState { Queued, Sending, Sent, Failed, Cancelled };
std::string ToString(StudyState state);
std::optional<StudyState> ParseStudyState(const std::string& text);

// One tracked study, as stored in the plugin's database.
struct StudyRecord {
  std::string orthancId;
  std::string studyInstanceUid;
  std::string orderId;  // of the current send cycle; empty before the order exists
  StudyState state = StudyState::Queued;
  unsigned instancesSent = 0;
  unsigned instancesTotal = 0;
  uint64_t bytesSent = 0;
  unsigned attempts = 0;  // study attempts in the current send cycle
  // Generation of the study's latest claim (each ClaimNext adds one): an
  // attempt's writes count only while the study still holds its claim.
  uint64_t claim = 0;
  std::string lastError;
  std::string trigger;           // "auto", "manual", "catch-up"
  std::string mode;              // "" = configured default, or "Instances"/"Zip"
  std::string extraMetadata;     // JSON object text from a manual send, may be empty
  std::string requestedBy;       // user of a manual send
  std::string sentSignature;     // fingerprint of the instance set last sent
  bool resendRequested = false;  // a new event arrived while sending
  bool respectWindows = false;   // a manual send that waits for SendWindows like automatic ones
  std::string patientName, patientId, studyDate, studyDescription;  // for the operator page
  double createdAt = 0, updatedAt = 0, nextAttemptAt = 0, sentAt = 0;
  // While Sending: the node that holds the claim, and until when its lease
  // runs unless renewed (another node may then take the study over), on the
  // store's lease clock (StoreIdentity).
  std::string node;
  double leaseExpiresAt = 0;
};

struct HistoryEntry {
  double time = 0;
  unsigned attempt = 0;
  std::string event;   // "queued", "started", "sent", "retry", "failed", "cancelled", ...
  std::string detail;  // never a secret
};

}  // namespace CloudIngest
