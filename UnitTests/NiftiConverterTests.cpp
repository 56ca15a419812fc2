// NiftiConverter against the real dcm2niix (Debian package) with DICOM
// series generated at test time by UnitTests/Integration/gen_diffusion.py and
// gen_study.py (under /usr/bin/python3, which has pydicom), and against small
// fake "dcm2niix" scripts for failures that the real tool cannot be made to
// show on demand (a hang, a given exit code, inconsistent outputs).
#include <gtest/gtest.h>
#include <json/json.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "Core/Hashes.h"
#include "Core/Packaging/NiftiConverter.h"
#include "Core/Packaging/StudyZipper.h"

using namespace CloudIngest;
namespace fs = std::filesystem;

namespace {

// A private folder under /tmp, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "nifti-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& Path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // Everything below the folder, relative names, sorted.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& item : fs::recursive_directory_iterator(path_)) {
      names.push_back(item.path().lexically_relative(path_).string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& content, bool executable = false) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  if (executable) ::chmod(path.c_str(), 0755);
}

fs::path GeneratorFolder() {
  if (const char* root = std::getenv("CLOUD_INGEST_SOURCE_DIR")) {
    return fs::path(root) / "UnitTests" / "Integration";
  }
  // __FILE__ is absolute under CMake, relative to the checkout otherwise.
  return fs::path(__FILE__).parent_path() / "Integration";
}

// Runs a generator script (no user input reaches the command line: only
// mkdtemp paths and fixed arguments) and parses the JSON it prints.
Json::Value RunGenerator(const std::string& script, const std::string& arguments) {
  const fs::path path = GeneratorFolder() / script;
  if (!fs::exists(path)) throw std::runtime_error("generator not found: " + path.string());
  const std::string command = "/usr/bin/python3 '" + path.string() + "' " + arguments;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe.get())) > 0;) {
    output.append(buffer, n);
  }
  const int status = ::pclose(pipe.release());
  if (status != 0) throw std::runtime_error(command + " failed: " + std::to_string(status));
  Json::Value json;
  std::istringstream in(output);
  std::string errors;
  if (!Json::parseFromStream(Json::CharReaderBuilder(), in, &json, &errors)) {
    throw std::runtime_error("bad JSON from " + script + ": " + errors);
  }
  return json;
}

// A study whose instances are files on disk (or bytes given directly).
class FolderStudySource : public IStudySource {
 public:
  FolderStudySource() {
    study_.orthancId = "study-1";
    study_.mainTags = Json::Value(Json::objectValue);
  }
  void AddFile(const std::string& path, const std::string& sop, const std::string& seriesKey) {
    AddBytes(ReadWholeFile(path), sop, seriesKey);
  }
  void AddBytes(const std::string& bytes, const std::string& sop, const std::string& seriesKey) {
    InstanceInfo info;
    info.orthancId = "i" + std::to_string(study_.instances.size() + 1);
    info.sopInstanceUid = sop;
    info.seriesInstanceUid = seriesKey;
    info.size = bytes.size();
    files_[info.orthancId] = bytes;
    study_.instances.push_back(info);
  }
  void FailReads() { failReads_ = true; }
  const StudyInfo& Study() const { return study_; }
  unsigned Reads() const { return reads_; }

  bool StudyExists(const std::string& id) override { return id == study_.orthancId; }
  StudyInfo GetStudy(const std::string& id) override {
    if (id != study_.orthancId) throw StudyNotFound("no study " + id);
    return study_;
  }
  std::string ReadInstance(const std::string& id) override {
    ++reads_;
    if (failReads_) throw StudyNotFound("instance " + id + " was deleted");
    return files_.at(id);
  }
  Json::Value GetInstanceTags(const std::string&) override {
    return Json::Value(Json::objectValue);
  }

 private:
  StudyInfo study_;
  std::map<std::string, std::string> files_;
  unsigned reads_ = 0;
  bool failReads_ = false;
};

struct ZipEntry {
  std::string name;
  std::string data;
  uint16_t method = 0;
};

std::vector<ZipEntry> ReadZip(const std::string& path) {
  int error = 0;
  zip_t* const archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (archive == nullptr) throw std::runtime_error("cannot open " + path);
  std::vector<ZipEntry> entries;
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &stat);
    ZipEntry entry{stat.name, std::string(stat.size, '\0'), stat.comp_method};
    zip_file_t* const file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
    const zip_int64_t read = zip_fread(file, entry.data.data(), stat.size);
    zip_fclose(file);
    if (read != static_cast<zip_int64_t>(stat.size)) throw std::runtime_error("short entry");
    entries.push_back(std::move(entry));
  }
  zip_close(archive);
  return entries;
}

std::vector<double> Numbers(const std::string& text) {
  std::vector<double> values;
  std::istringstream in(text);
  for (double v; in >> v;) values.push_back(v);
  return values;
}

// The generated series, shared by the tests of one process.
struct Fixtures {
  ScratchDir folder;
  Json::Value diffusion;  // gen_diffusion.py's answer
  Json::Value ct;         // gen_study.py's answer
  std::string diffusionSeries;
  std::string ctSeries;
  std::vector<double> bvals = {0, 500, 1000, 1000, 2000};

  Fixtures() {
    diffusion = RunGenerator("gen_diffusion.py", "'" + (folder / "dwi") +
                                                     "' --bvals 0,500,1000,1000,2000 --slices 3"
                                                     " --rows 24 --columns 24"
                                                     " --study-uid 1.2.826.0.1.3680043.8.498.77");
    ct = RunGenerator("gen_study.py", "'" + (folder / "ct") +
                                          "' --series 1 --instances 4 --size-kb 4"
                                          " --study-uid 1.2.826.0.1.3680043.8.498.77");
    diffusionSeries = diffusion["series_uid"].asString();
    ctSeries = ct["series_uids"][0].asString();
  }
  // The files written by gen_study.py: outdir/series1/IM00001.dcm ...
  std::vector<std::string> CtFiles() const {
    std::vector<std::string> files;
    for (unsigned i = 1; i <= 4; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "ct/series1/IM%05u.dcm", i);
      files.push_back(folder / name);
    }
    return files;
  }
};

class NiftiConverterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fixtures_ = std::make_unique<Fixtures>(); }
  static void TearDownTestSuite() { fixtures_.reset(); }

  void AddDiffusion(FolderStudySource& source, const std::string& seriesKey) {
    for (const Json::Value& instance : fixtures_->diffusion["instances"]) {
      source.AddFile(instance[0].asString(), instance[1].asString(), seriesKey);
    }
  }
  void AddCt(FolderStudySource& source, const std::string& seriesKey) {
    unsigned n = 0;
    for (const std::string& file : fixtures_->CtFiles()) {
      source.AddFile(file, "ct-" + std::to_string(++n), seriesKey);
    }
  }
  // A fake dcm2niix: a shell script in the scratch folder (the converter
  // itself runs it without a shell, through posix_spawn).
  std::string FakeTool(const std::string& body) {
    const std::string path = tools_ / "fake-dcm2niix";
    WriteFile(path, "#!/bin/sh\n" + body + "\n", true);
    return path;
  }

  static std::unique_ptr<Fixtures> fixtures_;
  ScratchDir temp_;   // the converter's temporary directory
  ScratchDir tools_;  // fake tools and their traces
};

std::unique_ptr<Fixtures> NiftiConverterTest::fixtures_;

// Sets `out` to the shell code that finds the value of "-o" in the arguments.
const char* const kFindOutputFolder =
    "out=''; prev=''; for a in \"$@\"; do [ \"$prev\" = -o ] && out=\"$a\"; prev=\"$a\"; done";

// True while a process with that id exists and is not a zombie.
bool ProcessAlive(pid_t pid) {
  const std::string stat = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

TEST_F(NiftiConverterTest, ToolIsInstalled) {
  EXPECT_TRUE(NiftiConverter::IsAvailable("dcm2niix")) << "install Debian's dcm2niix";
  EXPECT_FALSE(NiftiConverter::IsAvailable("dcm2niix-that-does-not-exist"));
  EXPECT_FALSE(NiftiConverter::IsAvailable(tools_ / "missing"));
  EXPECT_FALSE(NiftiConverter::IsAvailable(""));
  EXPECT_FALSE(NiftiConverter::IsAvailable(tools_.Path()));  // a folder
  WriteFile(tools_ / "not-executable", "#!/bin/sh\n");
  EXPECT_FALSE(NiftiConverter::IsAvailable(tools_ / "not-executable"));
  EXPECT_TRUE(NiftiConverter::IsAvailable(FakeTool("exit 0")));
}

TEST_F(NiftiConverterTest, ConvertsADiffusionSeriesIntoOneStoredZipOfThreeFiles) {
  FolderStudySource source;
  AddCt(source, fixtures_->ctSeries);  // another series of the same study: left out
  AddDiffusion(source, fixtures_->diffusionSeries);
  const size_t diffusionCount = fixtures_->diffusion["instances"].size();
  ASSERT_EQ(diffusionCount, 15u);  // 5 volumes x 3 slices

  std::string zipPath;
  {
    const NiftiBundle bundle =
        NiftiConverter(source, temp_.Path()).Convert(source.Study(), fixtures_->diffusionSeries);
    zipPath = bundle.Path();

    EXPECT_EQ(bundle.instanceCount, diffusionCount);
    EXPECT_EQ(source.Reads(), diffusionCount);  // the CT series was not read
    EXPECT_EQ(bundle.seriesInstanceUid, fixtures_->diffusionSeries);
    EXPECT_EQ(bundle.bvals, fixtures_->bvals);
    // The generator's own record of what it wrote agrees.
    std::vector<double> generated;
    for (const Json::Value& b : fixtures_->diffusion["bvals"]) generated.push_back(b.asDouble());
    EXPECT_EQ(bundle.bvals, generated);

    const std::string stem = fixtures_->diffusionSeries;
    EXPECT_EQ(bundle.entryNames,
              (std::vector<std::string>{stem + ".nii.gz", stem + ".bvec", stem + ".bval"}));

    // Only the finished ZIP is left in the temporary directory, under a name
    // the start-up cleaner recognises; the work folder is gone.
    const std::string fileName = fs::path(zipPath).filename().string();
    EXPECT_EQ(temp_.Entries(), std::vector<std::string>{fileName});
    EXPECT_EQ(fileName.rfind(std::string(StudyZipper::kFilePrefix) + "nifti-", 0), 0u);
    EXPECT_TRUE(StudyZipper::IsTempFileName(fileName)) << fileName;

    const std::string bytes = ReadWholeFile(zipPath);
    EXPECT_EQ(bundle.size, bytes.size());
    EXPECT_EQ(bundle.md5Hex, Md5Hex(bytes));
    EXPECT_EQ(bundle.sha256Hex, Sha256Hex(bytes));

    const std::vector<ZipEntry> entries = ReadZip(zipPath);
    ASSERT_EQ(entries.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(entries[i].name, bundle.entryNames[i]);
      EXPECT_EQ(entries[i].method, ZIP_CM_STORE) << entries[i].name;
    }
    // A gzip stream; the .bval holds the b-values sent; the .bvec 3 rows of 5.
    ASSERT_GE(entries[0].data.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(entries[0].data[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(entries[0].data[1]), 0x8b);
    EXPECT_EQ(Numbers(entries[2].data), fixtures_->bvals);
    EXPECT_EQ(Numbers(entries[1].data).size(), 15u);
    std::istringstream rows(entries[1].data);
    std::string row;
    unsigned rowCount = 0;
    while (std::getline(rows, row)) {
      if (!row.empty()) {
        ++rowCount;
        EXPECT_EQ(Numbers(row).size(), 5u);
      }
    }
    EXPECT_EQ(rowCount, 3u);
  }
  EXPECT_FALSE(fs::exists(zipPath));  // the bundle owned it
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, ReleasedBundleKeepsItsFile) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  std::string kept;
  {
    NiftiBundle bundle = NiftiConverter(source, temp_.Path()).Convert(source.Study(), "dwi");
    EXPECT_EQ(bundle.entryNames.front(), "dwi.nii.gz");
    kept = bundle.file.Release();
  }
  EXPECT_TRUE(fs::exists(kept));
  EXPECT_EQ(StudyZipper::CleanStaleTempFiles(temp_.Path()), 1u);  // the crash cleaner takes it
  EXPECT_TRUE(temp_.Entries().empty());
}

// A host that ignores SIGCHLD has its children reaped by the kernel: the exit
// code is lost, and the outputs decide.
TEST_F(NiftiConverterTest, ConvertsWhenTheHostIgnoresSigchld) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ASSERT_EQ(::sigaction(SIGCHLD, &ignore, &previous), 0);
  std::vector<double> bvals;
  std::string error;
  try {
    bvals = NiftiConverter(source, temp_.Path()).Convert(source.Study(), "dwi").bvals;
  } catch (const std::exception& e) {
    error = e.what();
  }
  ::sigaction(SIGCHLD, &previous, nullptr);
  EXPECT_EQ(error, "");
  EXPECT_EQ(bvals, fixtures_->bvals);
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, NonDiffusionSeriesIsNotConvertible) {
  FolderStudySource source;
  AddCt(source, fixtures_->ctSeries);
  AddDiffusion(source, fixtures_->diffusionSeries);
  try {
    NiftiConverter(source, temp_.Path()).Convert(source.Study(), fixtures_->ctSeries);
    FAIL() << "a CT series converted";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::NotDiffusion);
    EXPECT_STREQ(e.what(), "not a diffusion series: no .bval/.bvec produced");
  }
  EXPECT_EQ(source.Reads(), 4u);
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, MissingToolIsNotConvertibleAndReadsNothing) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  for (const std::string& tool : {tools_ / "no-such-dcm2niix", std::string("no-such-dcm2niix")}) {
    try {
      NiftiConverter(source, temp_.Path(), tool).Convert(source.Study(), "dwi");
      FAIL() << "converted without a tool";
    } catch (const NiftiNotConvertible& e) {
      EXPECT_EQ(e.Failure(), NiftiFailure::ToolMissing);
      EXPECT_EQ(std::string(e.what()).rfind("dcm2niix not found", 0), 0u) << e.what();
    }
  }
  EXPECT_EQ(source.Reads(), 0u);
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, ToolFailureReportsExitCodeAndLastErrorLine) {
  // The real tool on files that are not DICOM.
  FolderStudySource junk;
  junk.AddBytes("not a DICOM file", "1.2.3", "s");
  junk.AddBytes("neither is this one", "1.2.4", "s");
  try {
    NiftiConverter(junk, temp_.Path()).Convert(junk.Study(), "s");
    FAIL() << "junk converted";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::ToolFailed);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("dcm2niix failed (exit 2): ", 0), 0u) << what;
    EXPECT_NE(what.find("Unable to find any DICOM images"), std::string::npos) << what;
  }
  EXPECT_TRUE(temp_.Entries().empty());

  // A tool that says several things: the reason is its last stderr line.
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string tool = FakeTool(
      "echo 'chatter on stdout'\necho 'first problem' >&2\n"
      "printf 'Error: the real reason\\n\\n' >&2\nexit 3");
  try {
    NiftiConverter(source, temp_.Path(), tool).Convert(source.Study(), "dwi");
    FAIL() << "a failing tool converted";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::ToolFailed);
    EXPECT_STREQ(e.what(), "dcm2niix failed (exit 3): Error: the real reason");
  }
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, RunsTheToolWithFixedArgumentsAndNoShell) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string trace = tools_ / "trace";
  // Records its arguments, one per line, and what its input folder held.
  const std::string tool =
      FakeTool("for a in \"$@\"; do echo \"$a\"; done > '" + trace + "'\n" +
               "last=''; for a in \"$@\"; do last=\"$a\"; done; ls \"$last\" > '" + trace +
               ".in'\n" + kFindOutputFolder + "\n" +
               "printf 'gz' > \"$out/dwi.nii.gz\"; printf '0 1000\\n' > \"$out/dwi.bval\"\n"
               "printf '0 1\\n0 0\\n0 0\\n' > \"$out/dwi.bvec\"");
  const NiftiBundle bundle =
      NiftiConverter(source, temp_.Path(), tool).Convert(source.Study(), "dwi");
  EXPECT_EQ(bundle.bvals, (std::vector<double>{0, 1000}));

  std::vector<std::string> args;
  std::istringstream lines(ReadWholeFile(trace));
  for (std::string line; std::getline(lines, line);) args.push_back(line);
  ASSERT_EQ(args.size(), 9u) << ReadWholeFile(trace);
  EXPECT_EQ(std::vector<std::string>(args.begin(), args.begin() + 6),
            (std::vector<std::string>{"-z", "y", "-b", "n", "-f", "dwi"}));
  EXPECT_EQ(args[6], "-o");
  const std::string work = fs::path(args[7]).parent_path().string();
  EXPECT_EQ(fs::path(args[7]).filename(), "out");
  EXPECT_EQ(args[8], work + "/in");
  EXPECT_EQ(fs::path(work).parent_path().string(), temp_.Path());
  EXPECT_EQ(fs::path(work).filename().string().rfind(NiftiConverter::kWorkFolderPrefix, 0), 0u);
  EXPECT_FALSE(fs::exists(work));  // removed after the conversion
  // Every instance of the series, and nothing else, was written for it.
  std::istringstream listing(ReadWholeFile(trace + ".in"));
  unsigned files = 0;
  for (std::string line; std::getline(listing, line);) files += line.empty() ? 0 : 1;
  EXPECT_EQ(files, fixtures_->diffusion["instances"].size());
}

TEST_F(NiftiConverterTest, RunsTheToolWithAMinimalEnvironment) {
  // Orthanc's environment carries the ${ENV} secrets of its configuration.
  ASSERT_EQ(0, setenv("CLOUD_INGEST_CLIENT_SECRET", "never-for-dcm2niix", 1));
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string trace = tools_ / "env";
  const std::string tool = FakeTool("env > '" + trace + "'\n" + kFindOutputFolder + "\n" +
                                    "printf 'gz' > \"$out/dwi.nii.gz\"; printf '0 1000\\n' > "
                                    "\"$out/dwi.bval\"\n"
                                    "printf '0 1\\n0 0\\n0 0\\n' > \"$out/dwi.bvec\"");
  NiftiConverter(source, temp_.Path(), tool).Convert(source.Study(), "dwi");
  unsetenv("CLOUD_INGEST_CLIENT_SECRET");
  const std::string env = ReadWholeFile(trace);
  EXPECT_EQ(env.find("never-for-dcm2niix"), std::string::npos) << env;
  EXPECT_EQ(env.find("CLOUD_INGEST_CLIENT_SECRET"), std::string::npos) << env;
  std::set<std::string> names;
  std::istringstream lines(env);
  for (std::string line; std::getline(lines, line);) names.insert(line.substr(0, line.find('=')));
  names.erase("PWD");  // the shell running the fake tool adds it
  names.erase("SHLVL");
  names.erase("_");
  EXPECT_EQ(names, (std::set<std::string>{"PATH", "HOME", "TMPDIR", "LC_ALL"})) << env;
  EXPECT_NE(env.find("HOME=" + temp_.Path() + "/"), std::string::npos) << env;
}

TEST_F(NiftiConverterTest, InconsistentOrMultipleOutputsAreRefused) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string base = std::string(kFindOutputFolder) + "\nprintf 'gz' > \"$out/dwi.nii.gz\"\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"printf '0 1000\\n' > \"$out/dwi.bval\"; printf '0 1\\n0 0\\n' > \"$out/dwi.bvec\"",
       "not 3 rows of 2 values"},
      {"printf '0 1000\\n' > \"$out/dwi.bval\"", "0 .bvec"},
      {"printf '0 x\\n' > \"$out/dwi.bval\"; printf '0\\n0\\n0\\n' > \"$out/dwi.bvec\"",
       "non-number"},
      {"printf 'gz' > \"$out/dwia.nii.gz\"", "produced 2 images"},
  };
  for (const auto& [script, expected] : cases) {
    const std::string tool = FakeTool(base + script);
    try {
      NiftiConverter(source, temp_.Path(), tool).Convert(source.Study(), "dwi");
      FAIL() << "accepted: " << script;
    } catch (const NiftiNotConvertible& e) {
      EXPECT_EQ(e.Failure(), NiftiFailure::BadOutput) << e.what();
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
    EXPECT_TRUE(temp_.Entries().empty()) << script;
  }
  // Nothing at all, with success.
  try {
    NiftiConverter(source, temp_.Path(), FakeTool("exit 0")).Convert(source.Study(), "dwi");
    FAIL() << "accepted no output";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::BadOutput);
    EXPECT_NE(std::string(e.what()).find("no image"), std::string::npos) << e.what();
  }
  // The real tool, given two series under one key.
  FolderStudySource mixed;
  AddDiffusion(mixed, "both");
  AddCt(mixed, "both");
  try {
    NiftiConverter(mixed, temp_.Path()).Convert(mixed.Study(), "both");
    FAIL() << "two series converted into one bundle";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::BadOutput);
    EXPECT_NE(std::string(e.what()).find("produced 2 images"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, UnknownSeriesIsNotConvertible) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  try {
    NiftiConverter(source, temp_.Path()).Convert(source.Study(), "other");
    FAIL() << "converted a series that is not there";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::NoInstances);
  }
  EXPECT_EQ(source.Reads(), 0u);
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, HungToolIsKilledWithWhatItStartedWhenTimeIsUp) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string pidFile = tools_ / "grandchild.pid";
  const std::string tool = FakeTool("sleep 60 &\necho $! > '" + pidFile + "'\nwait");
  const auto start = std::chrono::steady_clock::now();
  try {
    NiftiConverter(source, temp_.Path(), tool, std::chrono::milliseconds(700))
        .Convert(source.Study(), "dwi");
    FAIL() << "a hung tool converted";
  } catch (const NiftiNotConvertible& e) {
    EXPECT_EQ(e.Failure(), NiftiFailure::TimedOut);
    EXPECT_STREQ(e.what(), "dcm2niix timed out after 700 ms");
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(700));
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  const pid_t grandchild = static_cast<pid_t>(std::atoi(ReadWholeFile(pidFile).c_str()));
  ASSERT_GT(grandchild, 0);
  // Killed with its group; give the kernel a moment to tear it down.
  for (int i = 0; i < 100 && ProcessAlive(grandchild); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(ProcessAlive(grandchild));
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, StopWhileTheToolRunsKillsItAndCancels) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string started = tools_ / "started";
  const std::string tool = FakeTool("touch '" + started + "'\nexec sleep 60");
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    for (int i = 0; i < 500 && !fs::exists(started); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop = true;
  });
  const auto start = std::chrono::steady_clock::now();
  bool cancelled = false;
  try {
    NiftiConverter(source, temp_.Path(), tool).Convert(source.Study(), "dwi", [&] {
      return stop.load();
    });
  } catch (const ZipCancelled& e) {  // what the sender already handles
    cancelled = dynamic_cast<const NiftiCancelled*>(&e) != nullptr;
  }
  stopper.join();
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(fs::exists(started));  // it was stopped while the tool ran
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, StopWhileWritingInstancesCancelsBeforeTheTool) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string ran = tools_ / "ran";
  const std::string tool = FakeTool("touch '" + ran + "'");
  unsigned asked = 0;
  EXPECT_THROW(NiftiConverter(source, temp_.Path(), tool)
                   .Convert(source.Study(), "dwi", [&] { return ++asked > 3; }),
               NiftiCancelled);
  EXPECT_LT(source.Reads(), fixtures_->diffusion["instances"].size());
  EXPECT_FALSE(fs::exists(ran));
  EXPECT_TRUE(temp_.Entries().empty());

  // Asked to stop from the start: nothing is read.
  FolderStudySource fresh;
  AddDiffusion(fresh, "dwi");
  EXPECT_THROW(
      NiftiConverter(fresh, temp_.Path()).Convert(fresh.Study(), "dwi", [] { return true; }),
      NiftiCancelled);
  EXPECT_EQ(fresh.Reads(), 0u);
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, ReadFailurePropagatesAndLeavesNothing) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  source.FailReads();
  EXPECT_THROW(NiftiConverter(source, temp_.Path()).Convert(source.Study(), "dwi"), StudyNotFound);
  EXPECT_TRUE(temp_.Entries().empty());
}

TEST_F(NiftiConverterTest, UnusableTemporaryDirectoryIsAZipError) {
  FolderStudySource source;
  AddDiffusion(source, "dwi");
  const std::string file = tools_ / "a-file";
  WriteFile(file, "x");
  EXPECT_THROW(NiftiConverter(source, file + "/below").Convert(source.Study(), "dwi"), ZipError);
}

TEST_F(NiftiConverterTest, CleanerRemovesOnlyStaleWorkFolders) {
  fs::create_directories(temp_ / "cloud-ingest-nifti-abc123/in");
  WriteFile(temp_ / "cloud-ingest-nifti-abc123/in/000001.dcm", "x");
  fs::create_directories(tools_ / "precious");
  WriteFile(tools_ / "precious/keep", "x");
  fs::create_directory_symlink(tools_ / "precious", temp_ / "cloud-ingest-nifti-link");
  fs::create_directories(temp_ / "other-folder");
  WriteFile(temp_ / "cloud-ingest-nifti-file", "not a folder");

  EXPECT_EQ(NiftiConverter::CleanStaleWorkFolders(temp_.Path()), 1u);
  EXPECT_EQ(temp_.Entries(), (std::vector<std::string>{"cloud-ingest-nifti-file",
                                                       "cloud-ingest-nifti-link", "other-folder"}));
  EXPECT_TRUE(fs::exists(tools_ / "precious/keep"));
  EXPECT_EQ(NiftiConverter::CleanStaleWorkFolders(tools_ / "missing"), 0u);
}

TEST_F(NiftiConverterTest, FailureNamesAreStable) {
  EXPECT_EQ(ToString(NiftiFailure::ToolMissing), "tool_missing");
  EXPECT_EQ(ToString(NiftiFailure::NotDiffusion), "not_diffusion");
  EXPECT_EQ(ToString(NiftiFailure::ToolFailed), "tool_failed");
  EXPECT_EQ(ToString(NiftiFailure::TimedOut), "timed_out");
  EXPECT_EQ(ToString(NiftiFailure::BadOutput), "bad_output");
  EXPECT_EQ(ToString(NiftiFailure::NoInstances), "no_instances");
}

}  // namespace
