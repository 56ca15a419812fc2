#pragma once
// Checks of the CloudIngest section's values that have a form of their own:
// URLs, upload-host patterns, modalities, AE titles, DICOM tag references.
// Each returns the value normalised or fails with a ConfigurationError
// naming `path`.
#include <json/value.h>

#include <string>

namespace CloudIngest::ConfigurationReaders {

// Whether a URL key may be "" (only while the plugin is disabled).
enum class EmptyUrl { Refused, Allowed };

// An http(s) URL to which paths or a query will be appended; `key` must be
// present. Returns it with the scheme in lower case.
std::string ReadUrl(const Json::Value& object, const char* key, const std::string& path,
                    const std::string& example, EmptyUrl empty);
// The host of a URL ReadUrl accepted, as the upload-host allow-list compares it.
std::string HostOfUrl(const std::string& url);

// A host name, "*.example.com" or an IPv6 address ("[::1]" or "::1"):
// lower case, IPv6 without brackets and in curl's spelling.
std::string CheckHostPattern(const std::string& value, const std::string& path);
// Upper case, 1..16 of letters, digits and '_'.
std::string CheckModality(const std::string& value, const std::string& path);
// 1..16 printable ASCII characters but '\'.
std::string CheckAet(const std::string& value, const std::string& path);
// A keyword as written, or "gggg,eeee" in lower case (Orthanc's own spelling
// of tags without a keyword).
std::string NormaliseTagReference(const std::string& value, const std::string& path);

}  // namespace CloudIngest::ConfigurationReaders
