#pragma once
// The JSON bodies of the /cloud-ingest/ answers.
#include <json/value.h>

#include <string>

#include "Core/IngestService.h"
#include "Rest/RestApi.h"

namespace CloudIngest {

// `value` written as the body (two-space indents, UTF-8 as is).
RestResponse JsonAnswer(const Json::Value& value, int status = 200);
// {"error": message, "details": details}
RestResponse JsonError(int status, const std::string& message, const Json::Value& details = {});

Json::Value StudyToJson(const StudyRecord& record);
// The study with its "history".
Json::Value StudyDetailsToJson(const StudyDetails& study);
// GET /status: only "version" and "enabled" when the plugin is disabled.
Json::Value StatusToJson(const ServiceStatus& status);
Json::Value ConnectionTestToJson(const ConnectionTest& test);
Json::Value PreviewToJson(const StudyPreview& preview);

}  // namespace CloudIngest
