#include "Core/Cloud/CurlTransfer.h"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <exception>

namespace CloudIngest::CurlTransferDetail {

size_t ReadCallback(char* buffer, size_t size, size_t count, void* userData) {
  auto& transfer = *static_cast<Transfer*>(userData);
  if (transfer.source == nullptr) {
    return 0;
  }
  size_t max = size * count;
  if (transfer.rate != nullptr && transfer.sent < transfer.size) {
    max = transfer.rate->Acquire(std::min<uint64_t>(max, transfer.size - transfer.sent),
                                 transfer.aborting);
    if (max == 0) {
      transfer.aborted = true;
      return CURL_READFUNC_ABORT;
    }
  }
  size_t read = 0;
  try {
    read = transfer.source->Read(buffer, max);
  } catch (const std::exception& e) {
    transfer.bodyError = e.what();
    return CURL_READFUNC_ABORT;
  } catch (...) {
    transfer.bodyError = "unknown error";
    return CURL_READFUNC_ABORT;
  }
  if (read > max || transfer.sent + read > transfer.size) {
    transfer.bodyError = "the body source returned more bytes than its size";
    return CURL_READFUNC_ABORT;
  }
  transfer.sent += read;
  return read;
}

int SeekCallback(void* userData, curl_off_t offset, int origin) {
  auto& transfer = *static_cast<Transfer*>(userData);
  if (origin != SEEK_SET || offset != 0) {
    return CURL_SEEKFUNC_CANTSEEK;  // curl then falls back to reading forward
  }
  try {
    if (transfer.source != nullptr) {
      transfer.source->Rewind();
    }
  } catch (const std::exception& e) {
    transfer.bodyError = std::string("rewind failed: ") + e.what();
    return CURL_SEEKFUNC_FAIL;
  } catch (...) {
    transfer.bodyError = "rewind failed";
    return CURL_SEEKFUNC_FAIL;
  }
  transfer.sent = 0;
  return CURL_SEEKFUNC_OK;
}

size_t WriteCallback(char* data, size_t size, size_t count, void* userData) {
  auto& transfer = *static_cast<Transfer*>(userData);
  const size_t bytes = size * count;
  if (bytes > transfer.maxResponseBytes - transfer.response.body.size()) {
    transfer.tooLarge = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  try {
    transfer.response.body.append(data, bytes);
  } catch (...) {
    return 0;
  }
  return bytes;
}

size_t HeaderCallback(char* data, size_t size, size_t count, void* userData) {
  auto& transfer = *static_cast<Transfer*>(userData);
  const size_t bytes = size * count;
  try {
    std::string line(data, bytes);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) {
      line.pop_back();
    }
    if (line.compare(0, 5, "HTTP/") == 0) {
      // A new response begins (after "100 Continue" or a proxy's CONNECT answer).
      transfer.response.headers.clear();
      return bytes;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      return bytes;
    }
    const std::string name =
        boost::algorithm::to_lower_copy(line.substr(0, colon), std::locale::classic());
    const std::string value =
        boost::algorithm::trim_copy_if(line.substr(colon + 1), boost::algorithm::is_any_of(" \t"));
    auto [it, inserted] = transfer.response.headers.emplace(name, value);
    if (!inserted) {
      it->second += ", " + value;  // repeated fields combine (RFC 9110 5.3)
    }
  } catch (...) {
    return 0;
  }
  return bytes;
}

int ProgressCallback(void* userData, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& transfer = *static_cast<Transfer*>(userData);
  if (transfer.aborting != nullptr && transfer.aborting->load()) {
    transfer.aborted = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

}  // namespace CloudIngest::CurlTransferDetail
