#pragma once
// What Orthanc's basic de-identification profile (DICOM PS 3.15-2021b,
// Table E.1-1, "basic profile" column) does to the tags an order or a site
// commonly names, so that the configuration can refuse, at start-up, order
// metadata the profile would take away.
#include <string>

namespace CloudIngest {

// Whether the basic profile removes or empties the tag `reference` (a keyword
// such as "InstitutionName", or "gggg,eeee" for the tags TagKeywordOf knows).
// Tags outside the list this knows are answered false: the order is built
// from the de-identified file anyway, so such a tag is merely absent from it.
bool BasicProfileRemoves(const std::string& reference);

}  // namespace CloudIngest
