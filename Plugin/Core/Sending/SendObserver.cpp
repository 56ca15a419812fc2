#include "Core/Sending/SendObserver.h"

#include <cctype>

#include "Core/Sending/StudySender.h"

namespace CloudIngest {

namespace {

bool IsWordCharacter(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// `text` with every whole-word occurrence of `value` (not inside a longer
// word or number) replaced by `placeholder`.
std::string ReplaceWord(const std::string& text, const std::string& value,
                        const std::string& placeholder) {
  if (value.empty()) return text;
  std::string out;
  size_t from = 0;
  for (size_t at = text.find(value); at != std::string::npos; at = text.find(value, at + 1)) {
    const size_t end = at + value.size();
    const bool whole = (at == 0 || !IsWordCharacter(text[at - 1])) &&
                       (end == text.size() || !IsWordCharacter(text[end]));
    if (!whole || at < from) continue;
    out.append(text, from, at - from).append(placeholder);
    from = end;
  }
  return out.append(text, from, std::string::npos);
}

// A run of digits and dots that reads as a DICOM UID (series, instance, or a
// study the record does not name): at least two dots, and longer than any
// IPv4 address or with more than its three dots; "1.5" or "10.0.0.1" stay.
bool LooksLikeUid(const std::string& run) {
  size_t dots = 0;
  for (const char c : run) dots += c == '.' ? 1 : 0;
  return dots >= 2 && (dots >= 4 || run.size() > 15);
}

std::string WithoutUids(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      out += text[i++];
      continue;
    }
    size_t end = i;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) ||
                                 (text[end] == '.' && end + 1 < text.size() &&
                                  std::isdigit(static_cast<unsigned char>(text[end + 1]))))) {
      end++;
    }
    const std::string run = text.substr(i, end - i);
    out += LooksLikeUid(run) ? "[uid]" : run;
    i = end;
  }
  return out;
}

}  // namespace

std::string WithoutStudyIdentifiers(const std::string& text, const StudyRecord& study) {
  std::string out = ReplaceWord(text, study.studyInstanceUid, "[uid]");
  out = ReplaceWord(out, study.patientId, "[patient id]");
  out = ReplaceWord(out, study.patientName, "[patient name]");
  return WithoutUids(out);
}

Json::Value SendJobContent(const SendEnd& end) {
  Json::Value v(Json::objectValue);
  v["orthanc_study_id"] = end.study.orthancId;
  v["order_id"] = end.study.orderId;
  v["instances_sent"] = end.study.instancesSent;
  v["instances_total"] = end.study.instancesTotal;
  v["bytes_sent"] = static_cast<Json::UInt64>(end.study.bytesSent);
  v["attempt"] = end.study.attempts;
  v["trigger"] = end.study.trigger;
  v["outcome"] = ToString(end.outcome);
  if (!end.error.empty()) v["error"] = WithoutStudyIdentifiers(end.error, end.study);
  return v;
}

}  // namespace CloudIngest
