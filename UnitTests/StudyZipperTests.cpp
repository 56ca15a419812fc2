#include <dirent.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Cloud/FileBodySource.h"
#include "Core/Hashes.h"
#include "Core/Packaging/StudyZipper.h"
#include "Core/Packaging/TempFile.h"
#include "Fakes/FakeStudySource.h"

// ASan's runtime has this; GCC ships no header for it.
#if defined(__SANITIZE_ADDRESS__)
#define CLOUD_INGEST_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLOUD_INGEST_TEST_ASAN 1
#endif
#endif
#ifdef CLOUD_INGEST_TEST_ASAN
extern "C" void __sanitizer_purge_allocator();
#endif

using namespace CloudIngest;

namespace {

// A private folder under /tmp, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "zipper-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& Path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& item : std::filesystem::directory_iterator(path_)) {
      names.push_back(item.path().filename().string());
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

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

bool Exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

// Deterministic bytes that differ at every offset, so a misplaced chunk shows.
std::string Pseudorandom(const std::string& seedText, size_t size) {
  uint64_t state = std::hash<std::string>()(seedText) | 1;
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    bytes[i] = static_cast<char>(state >> 24);
  }
  return bytes;
}

// A study whose instances are generated on demand, so the source itself
// holds no instance bytes (the memory test measures the zipper alone).
class GeneratedStudySource : public IStudySource {
 public:
  enum class Content { Random, Text };

  GeneratedStudySource(const std::string& id, unsigned series, unsigned perSeries, size_t size,
                       Content content = Content::Random)
      : content_(content) {
    study_.orthancId = id;
    study_.mainTags["StudyInstanceUID"] = "1.2.826.0.1.99";
    for (unsigned s = 1; s <= series; ++s) {
      for (unsigned i = 1; i <= perSeries; ++i) {
        InstanceInfo info;
        info.orthancId = id + "-s" + std::to_string(s) + "-i" + std::to_string(i);
        info.seriesInstanceUid = "1.2.826.0.1.99." + std::to_string(s);
        info.sopInstanceUid = info.seriesInstanceUid + "." + std::to_string(i);
        info.size = size;
        study_.instances.push_back(info);
      }
    }
  }

  std::string Expected(const InstanceInfo& info) const {
    const size_t size = actualSize_ > 0 ? actualSize_ : info.size;
    if (content_ == Content::Text) {
      std::string text;
      while (text.size() < size) text += "(0010,0010) PN [Doe^Jane] " + info.sopInstanceUid + "\n";
      return text.substr(0, size);
    }
    return Pseudorandom(info.orthancId, size);
  }

  StudyInfo& Study() { return study_; }
  unsigned Reads() const { return reads_; }
  void FailAtRead(unsigned n) { failAtRead_ = n; }
  void SetActualSize(size_t size) { actualSize_ = size; }
  void PurgeAllocatorOnRead() { purge_ = true; }

  bool StudyExists(const std::string& id) override { return id == study_.orthancId; }
  StudyInfo GetStudy(const std::string& id) override {
    if (id != study_.orthancId) throw StudyNotFound("no study " + id);
    return study_;
  }
  std::string ReadInstance(const std::string& id) override {
    ++reads_;
    if (reads_ == failAtRead_) throw StudyNotFound("instance " + id + " was deleted");
#ifdef CLOUD_INGEST_TEST_ASAN
    // ASan keeps freed blocks in a quarantine (256 MB by default) that no
    // ordinary allocator has; draining it keeps RSS about the zipper alone.
    if (purge_) __sanitizer_purge_allocator();
#endif
    for (const InstanceInfo& info : study_.instances) {
      if (info.orthancId == id) return Expected(info);
    }
    throw std::out_of_range("no instance " + id);
  }
  Json::Value GetInstanceTags(const std::string&) override {
    return Json::Value(Json::objectValue);
  }

 private:
  StudyInfo study_;
  Content content_;
  unsigned reads_ = 0;
  unsigned failAtRead_ = 0;
  size_t actualSize_ = 0;
  bool purge_ = false;
};

struct ZipEntry {
  std::string name;
  int method = -1;
  uint64_t compressedSize = 0;
  std::string data;
};

// Reads a ZIP back with libzip, checking its consistency on open.
std::vector<ZipEntry> ReadZip(const std::string& path) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (archive == nullptr) throw std::runtime_error("zip_open failed: " + std::to_string(error));
  std::vector<ZipEntry> entries;
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &stat) != 0) {
      zip_discard(archive);
      throw std::runtime_error("zip_stat_index failed");
    }
    ZipEntry entry;
    entry.name = stat.name;
    entry.method = stat.comp_method;
    entry.compressedSize = stat.comp_size;
    entry.data.resize(stat.size);
    zip_file_t* file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
    const zip_int64_t read = file ? zip_fread(file, entry.data.data(), entry.data.size()) : -1;
    char extra;
    const zip_int64_t after = file ? zip_fread(file, &extra, 1) : -1;
    if (file) zip_fclose(file);
    if (read != static_cast<zip_int64_t>(entry.data.size()) || after != 0) {
      zip_discard(archive);
      throw std::runtime_error("cannot read entry " + entry.name);
    }
    entries.push_back(std::move(entry));
  }
  zip_discard(archive);
  return entries;
}

// Gives free heap pages back to the system, so that reusing them later
// counts as growth.
void ReleaseFreeMemory() {
#ifdef CLOUD_INGEST_TEST_ASAN
  __sanitizer_purge_allocator();
#else
  malloc_trim(0);
#endif
}

long MaxRssKilobytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

size_t OpenDescriptors() {
  size_t count = 0;
  for (const auto& item : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)item;
    ++count;
  }
  return count;
}

}  // namespace

// ---------------------------------------------------------------- StudyZipper

TEST(StudyZipper, StoresEveryInstanceByteIdenticalUnderSeriesAndSopNames) {
  ScratchDir dir;
  GeneratedStudySource source("abc-123", 2, 3, 70 * 1000 + 17);
  StudyZipper zipper(source, dir.Path());

  const StudyZip zip = zipper.Zip(source.Study());

  const std::string file = std::filesystem::path(zip.Path()).filename().string();
  EXPECT_TRUE(std::regex_match(file, std::regex("cloud-ingest-abc-123-[0-9a-f]{16}\\.zip")))
      << file;
  EXPECT_EQ(dir.Path(), std::filesystem::path(zip.Path()).parent_path().string());
  EXPECT_EQ(std::vector<std::string>{file}, dir.Files());  // no .part, no libzip leftovers

  const std::vector<ZipEntry> entries = ReadZip(zip.Path());
  const auto& instances = source.Study().instances;
  ASSERT_EQ(6u, entries.size());
  ASSERT_EQ(6u, zip.entryCount);
  ASSERT_EQ(6u, zip.sopInstanceUids.size());
  for (size_t i = 0; i < instances.size(); ++i) {
    const std::string name =
        instances[i].seriesInstanceUid + "/" + instances[i].sopInstanceUid + ".dcm";
    EXPECT_EQ(name, entries[i].name);
    EXPECT_EQ(name, zip.entryNames[i]);
    EXPECT_EQ(instances[i].sopInstanceUid, zip.sopInstanceUids[i]);
    EXPECT_EQ(ZIP_CM_STORE, entries[i].method);
    EXPECT_EQ(instances[i].size, entries[i].compressedSize);
    EXPECT_TRUE(entries[i].data == source.Expected(instances[i])) << name;
  }
  EXPECT_EQ(6u * (70 * 1000 + 17), zip.contentBytes);
  EXPECT_EQ(6u, source.Reads());  // each instance read exactly once
}

TEST(StudyZipper, DeflateCompressesAndRoundTrips) {
  ScratchDir dir;
  GeneratedStudySource source("deflated", 1, 4, 200 * 1000, GeneratedStudySource::Content::Text);
  StudyZipper zipper(source, dir.Path(), ZipCompression::Deflate);

  const StudyZip zip = zipper.Zip(source.Study());

  const std::vector<ZipEntry> entries = ReadZip(zip.Path());
  ASSERT_EQ(4u, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(ZIP_CM_DEFLATE, entries[i].method);
    EXPECT_LT(entries[i].compressedSize, 200u * 1000 / 10);  // repetitive text shrinks a lot
    EXPECT_TRUE(entries[i].data == source.Expected(source.Study().instances[i]));
  }
  EXPECT_LT(zip.size, 4u * 200 * 1000 / 10);
}

TEST(StudyZipper, SizeAndDigestsDescribeTheFinishedFile) {
  ScratchDir dir;
  GeneratedStudySource source("hashed", 1, 5, 300 * 1000 + 1);
  StudyZipper zipper(source, dir.Path());

  const StudyZip zip = zipper.Zip(source.Study());

  const std::string bytes = ReadWholeFile(zip.Path());
  EXPECT_EQ(bytes.size(), zip.size);
  EXPECT_GT(zip.size, 5u * (300 * 1000 + 1));  // headers on top of the data
  EXPECT_EQ(Md5Hex(bytes), zip.md5Hex);
  EXPECT_EQ(Sha256Hex(bytes), zip.sha256Hex);
  EXPECT_EQ(32u, zip.md5Hex.size());
  EXPECT_EQ(64u, zip.sha256Hex.size());
}

TEST(StudyZipper, WorksWithTheSharedFakeSource) {
  ScratchDir dir;
  Testing::FakeStudySource source;
  StudyInfo& study = source.AddStudy("fake-1", "1.2.3", 30, 999);
  for (auto& instance : study.instances) instance.seriesInstanceUid = "1.2.3.4";
  StudyZipper zipper(source, dir.Path());

  const StudyZip zip = zipper.Zip(source.GetStudy("fake-1"));

  const std::vector<ZipEntry> entries = ReadZip(zip.Path());
  ASSERT_EQ(30u, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ("1.2.3.4/" + study.instances[i].sopInstanceUid + ".dcm", entries[i].name);
    EXPECT_EQ(source.ReadInstance(study.instances[i].orthancId), entries[i].data);
  }
}

TEST(StudyZipper, EntryNamesAreSafeAndUnique) {
  StudyInfo study;
  study.orthancId = "s";
  auto add = [&](const std::string& series, const std::string& sop, const std::string& id) {
    InstanceInfo info;
    info.seriesInstanceUid = series;
    info.sopInstanceUid = sop;
    info.orthancId = id;
    info.size = 10;
    study.instances.push_back(info);
  };
  add("1.2", "1.2.3", "a");
  add("1.2", "1.2.3", "b");            // duplicate SOP UID
  add("1.2", "1.2.3", "c");            // and again
  add("", "4.5", "d");                 // no series UID
  add("1.2", "", "orthanc-id-e");      // no SOP UID
  add("..", "../../etc/passwd", "f");  // path traversal
  add("1.2 ", "x\\y:z*", "g");         // characters unzippers dislike
  add(".", ".", "h");
  add("1.2", "", "");  // nothing at all

  const std::vector<std::string> names = StudyZipper::EntryNames(study);

  const std::vector<std::string> expected = {"1.2/1.2.3.dcm",        "1.2/1.2.3-2.dcm",
                                             "1.2/1.2.3-3.dcm",      "unknown-series/4.5.dcm",
                                             "1.2/orthanc-id-e.dcm", "__/.._.._etc_passwd.dcm",
                                             "1.2_/x_y_z_.dcm",      "_/_.dcm",
                                             "1.2/instance-9.dcm"};
  EXPECT_EQ(expected, names);
  const std::regex safe("[A-Za-z0-9._-]+/[A-Za-z0-9._-]+\\.dcm");
  for (const std::string& name : names) {
    EXPECT_TRUE(std::regex_match(name, safe)) << name;
    EXPECT_NE("..", name.substr(0, name.find('/'))) << name;
  }
  EXPECT_EQ(names.size(), std::set<std::string>(names.begin(), names.end()).size());

  // The archive really holds those names (libzip would refuse duplicates).
  ScratchDir dir;
  GeneratedStudySource source("s", 1, 1, 10);
  source.Study().instances = study.instances;  // read back by Orthanc id, "" included
  const StudyZip zip = StudyZipper(source, dir.Path()).Zip(source.Study());
  const std::vector<ZipEntry> entries = ReadZip(zip.Path());
  ASSERT_EQ(names.size(), entries.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(names[i], entries[i].name);
    EXPECT_TRUE(entries[i].data == source.Expected(study.instances[i]));
  }
}

// A de-identified file is another size than the stored one: libzip 1.10 and
// newer refuse an entry whose bytes differ from a size announced for it.
TEST(StudyZipper, EstimatedOrUnknownSizeThatIsWrongStillGivesACorrectArchive) {
  for (const uint64_t announced : {uint64_t{0}, uint64_t{10}, uint64_t{5000}}) {
    ScratchDir dir;
    GeneratedStudySource source("sized", 1, 3, 1234);
    source.SetActualSize(1234);
    for (auto& instance : source.Study().instances) {
      instance.size = announced;
      instance.sizeIs = SizeIs::Estimate;
    }
    StudyZipper zipper(source, dir.Path());

    const StudyZip zip = zipper.Zip(source.Study());

    const std::vector<ZipEntry> entries = ReadZip(zip.Path());
    ASSERT_EQ(3u, entries.size());
    for (const ZipEntry& entry : entries) EXPECT_EQ(1234u, entry.data.size()) << announced;
    EXPECT_EQ(3u * 1234, zip.contentBytes);
  }
}

TEST(StudyZipper, SourceFailingMidwayPropagatesItsErrorAndLeavesNoFile) {
  ScratchDir dir;
  GeneratedStudySource source("failing", 1, 6, 50 * 1000);
  source.FailAtRead(3);
  StudyZipper zipper(source, dir.Path());

  EXPECT_THROW(zipper.Zip(source.Study()), StudyNotFound);

  EXPECT_EQ(3u, source.Reads());  // stopped at the failure
  EXPECT_TRUE(dir.Files().empty());
}

TEST(StudyZipper, CancellationBetweenEntriesStopsReadingAndLeavesNoFile) {
  ScratchDir dir;
  GeneratedStudySource source("cancelled", 1, 8, 10 * 1000);
  StudyZipper zipper(source, dir.Path());
  unsigned checks = 0;
  const std::function<bool()> stopAfterThree = [&] {
    ++checks;
    return source.Reads() >= 3;
  };

  EXPECT_THROW(zipper.Zip(source.Study(), stopAfterThree), ZipCancelled);

  EXPECT_EQ(3u, source.Reads());
  EXPECT_EQ(5u, checks);  // once before starting, then before entries 1 to 4
  EXPECT_TRUE(dir.Files().empty());
}

TEST(StudyZipper, CancellationAfterTheLastEntryStillCleans) {
  ScratchDir dir;
  GeneratedStudySource source("late", 1, 3, 1000);
  StudyZipper zipper(source, dir.Path());

  EXPECT_THROW(zipper.Zip(source.Study(), [&] { return source.Reads() == 3; }), ZipCancelled);

  EXPECT_EQ(3u, source.Reads());
  EXPECT_TRUE(dir.Files().empty());
}

TEST(StudyZipper, CancelledBeforeStartingReadsNothing) {
  ScratchDir dir;
  GeneratedStudySource source("early", 1, 3, 1000);
  StudyZipper zipper(source, dir.Path());

  EXPECT_THROW(zipper.Zip(source.Study(), [] { return true; }), ZipCancelled);

  EXPECT_EQ(0u, source.Reads());
  EXPECT_TRUE(dir.Files().empty());
}

TEST(StudyZipper, EmptyStudyIsAnError) {
  ScratchDir dir;
  GeneratedStudySource source("empty", 0, 0, 0);
  StudyZipper zipper(source, dir.Path());

  EXPECT_THROW(zipper.Zip(source.Study()), ZipError);
  EXPECT_TRUE(dir.Files().empty());
}

TEST(StudyZipper, UnusableDirectoryIsAZipError) {
  ScratchDir dir;
  WriteFile(dir / "plain-file", "x");
  GeneratedStudySource source("nowhere", 1, 1, 10);
  StudyZipper zipper(source, dir / "plain-file/sub");

  EXPECT_THROW(zipper.Zip(source.Study()), ZipError);
  EXPECT_EQ(0u, source.Reads());
}

TEST(StudyZipper, CreatesAMissingTempDirectory) {
  ScratchDir dir;
  GeneratedStudySource source("nested", 1, 2, 10);
  StudyZipper zipper(source, dir / "a/b");

  const StudyZip zip = zipper.Zip(source.Study());

  EXPECT_EQ(dir / "a/b", std::filesystem::path(zip.Path()).parent_path().string());
  EXPECT_EQ(2u, ReadZip(zip.Path()).size());
}

TEST(StudyZipper, TheResultOwnsTheFileUnlessReleased) {
  ScratchDir dir;
  GeneratedStudySource source("owned", 1, 2, 100);
  StudyZipper zipper(source, dir.Path());
  std::string kept;
  {
    StudyZip dropped = zipper.Zip(source.Study());
    ASSERT_TRUE(Exists(dropped.Path()));
    StudyZip released = zipper.Zip(source.Study());
    EXPECT_NE(dropped.Path(), released.Path());  // two zips of one study do not clash
    kept = released.file.Release();
  }
  EXPECT_EQ(std::vector<std::string>{std::filesystem::path(kept).filename().string()}, dir.Files());
}

TEST(StudyZipper, MaximumSizeBoundsTheRealSize) {
  ScratchDir dir;
  GeneratedStudySource source("bounded", 3, 7, 20 * 1000 + 3);
  const uint64_t data = 21u * (20 * 1000 + 3);
  for (const ZipCompression compression : {ZipCompression::Store, ZipCompression::Deflate}) {
    const StudyZip zip = StudyZipper(source, dir.Path(), compression).Zip(source.Study());
    const uint64_t bound = StudyZipper::MaximumSize(source.Study(), compression);
    EXPECT_LE(zip.size, bound);
    EXPECT_LT(bound, data + data / 50 + 21u * 400);  // close enough to decide the 5 GB limit
  }
  EXPECT_GE(StudyZipper::MaximumSize(source.Study(), ZipCompression::Store), data);
}

// More than 65535 entries need ZIP64's end records; libzip must add them.
TEST(StudyZipper, MoreThan65535EntriesGetZip64EndRecords) {
  ScratchDir dir;
  Testing::FakeStudySource source;
  source.AddStudy("many", "1.2.3", 70000, 8);
  StudyZipper zipper(source, dir.Path());

  const StudyZip zip = zipper.Zip(source.GetStudy("many"));

  EXPECT_EQ(70000u, zip.entryCount);
  // The end of the file: [ZIP64 end record][ZIP64 locator (20)][end record (22)].
  std::ifstream in(zip.Path(), std::ios::binary);
  in.seekg(-42, std::ios::end);
  std::string tail(42, '\0');
  ASSERT_TRUE(in.read(tail.data(), 42));
  auto le32 = [](const std::string& bytes, size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8 |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 3])) << 24;
  };
  EXPECT_EQ(0x07064b50u, le32(tail, 0));            // ZIP64 end of central directory locator
  EXPECT_EQ(0x06054b50u, le32(tail, 20));           // end of central directory, no comment
  EXPECT_EQ(0xffffu, le32(tail, 20 + 8) & 0xffff);  // entry count deferred to the ZIP64 record
  // The locator points at the ZIP64 end record, which holds the real count.
  const uint64_t zip64End = le32(tail, 8) | static_cast<uint64_t>(le32(tail, 12)) << 32;
  in.seekg(static_cast<std::streamoff>(zip64End));
  std::string record(56, '\0');
  ASSERT_TRUE(in.read(record.data(), 56));
  EXPECT_EQ(0x06064b50u, le32(record, 0));
  EXPECT_EQ(70000u, le32(record, 32));  // total entries (64-bit, low half)
  EXPECT_EQ(0u, le32(record, 36));

  int error = 0;
  zip_t* archive = zip_open(zip.Path().c_str(), ZIP_RDONLY, &error);
  ASSERT_NE(nullptr, archive) << error;
  EXPECT_EQ(70000, zip_get_num_entries(archive, 0));  // read from the ZIP64 record
  const StudyInfo study = source.GetStudy("many");
  for (const size_t i : {size_t{0}, size_t{65535}, size_t{69999}}) {
    zip_file_t* file = zip_fopen_index(archive, i, 0);
    ASSERT_NE(nullptr, file);
    char buffer[16] = {};
    EXPECT_EQ(8, zip_fread(file, buffer, sizeof buffer));
    zip_fclose(file);
    EXPECT_EQ(source.ReadInstance(study.instances[i].orthancId), std::string(buffer, 8));
    EXPECT_STREQ(("unknown-series/" + study.instances[i].sopInstanceUid + ".dcm").c_str(),
                 zip_get_name(archive, i, 0));
  }
  zip_discard(archive);
}

// Peak memory while zipping 200 MB stays near one instance. Measured in a
// forked child: it returns the free memory it inherited to the system, then
// resets its peak RSS to the current RSS (/proc/self/clear_refs, "5"), so
// neither earlier tests nor memory freed during the zip distort the growth.
TEST(StudyZipper, PeakMemoryStaysBoundedByAboutOneInstance) {
  ScratchDir dir;
  int pipeFds[2];
  ASSERT_EQ(0, ::pipe(pipeFds));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipeFds[0]);
    long report[3] = {-1, 0, 0};
    try {
      GeneratedStudySource warmUp("warm", 1, 2, 1000);
      StudyZipper(warmUp, dir.Path()).Zip(warmUp.Study());  // loads code, sets up allocators
      GeneratedStudySource source("big", 4, 50, 1024 * 1024);
      source.PurgeAllocatorOnRead();
      ReleaseFreeMemory();
      std::ofstream("/proc/self/clear_refs") << "5";
      const long before = MaxRssKilobytes();
      const StudyZip zip = StudyZipper(source, dir.Path()).Zip(source.Study());
      report[0] = MaxRssKilobytes() - before;
      report[1] = static_cast<long>(zip.entryCount);
      report[2] = static_cast<long>(zip.size / (1024 * 1024));
    } catch (...) {
      report[0] = -1;
    }
    const ssize_t written = ::write(pipeFds[1], report, sizeof report);
    ::_exit(written == sizeof report ? 0 : 1);
  }
  ::close(pipeFds[1]);
  long report[3] = {-1, 0, 0};
  const ssize_t got = ::read(pipeFds[0], report, sizeof report);
  ::close(pipeFds[0]);
  int status = 0;
  ASSERT_EQ(child, ::waitpid(child, &status, 0));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(static_cast<ssize_t>(sizeof report), got);

  ASSERT_GE(report[0], 0) << "zipping failed in the child";
  EXPECT_EQ(200, report[1]);
  EXPECT_EQ(200, report[2]);  // MiB: the data really went through
  std::printf("[ zipper   ] peak RSS growth while zipping 200 x 1 MiB: %ld KiB\n", report[0]);
  RecordProperty("PeakRssGrowthKiB", std::to_string(report[0]));
  EXPECT_LT(report[0], 32 * 1024);
}

TEST(StudyZipper, CleanStaleTempFilesRemovesOnlyItsOwnLeftovers) {
  ScratchDir dir;
  const std::vector<std::string> stale = {
      "cloud-ingest-0a1b-2c3d-0123456789abcdef.zip",
      "cloud-ingest-0a1b-2c3d-0123456789abcdef.zip.part",
      "cloud-ingest-0a1b-2c3d-0123456789abcdef.zip.part.Ab3xY9",  // libzip's own temporary
  };
  const std::vector<std::string> others = {
      "cloud-ingest-audit.jsonl", "cloud-ingest.db",
      "cloud-ingest.db-journal",  "study.zip",
      "cloud-ingest-x.zip.bak",   "cloud-ingest-x.zip.part.toolong1",
      "xcloud-ingest-y.zip",      "cloud-ingest-.zip.part.ab.def"};
  for (const auto& name : stale) WriteFile(dir / name, "stale");
  for (const auto& name : others) WriteFile(dir / name, "keep");
  std::filesystem::create_directory(dir / "cloud-ingest-folder.zip");  // not a file
  WriteFile(dir / "target.txt", "keep");
  std::filesystem::create_symlink(dir / "target.txt", dir / "cloud-ingest-link.zip");

  EXPECT_EQ(3u, StudyZipper::CleanStaleTempFiles(dir.Path()));

  for (const auto& name : stale) EXPECT_FALSE(Exists(dir / name)) << name;
  for (const auto& name : others) EXPECT_TRUE(Exists(dir / name)) << name;
  EXPECT_TRUE(Exists(dir / "cloud-ingest-folder.zip"));
  EXPECT_TRUE(Exists(dir / "cloud-ingest-link.zip"));
  EXPECT_EQ("keep", ReadWholeFile(dir / "target.txt"));
  EXPECT_EQ(0u, StudyZipper::CleanStaleTempFiles(dir.Path()));  // nothing left to do
  EXPECT_EQ(0u, StudyZipper::CleanStaleTempFiles(dir / "missing"));
}

TEST(StudyZipper, CleanStaleTempFilesRemovesWhatAnInterruptedZipLeft) {
  ScratchDir dir;
  GeneratedStudySource source("crashed", 1, 2, 100);
  StudyZip finished = StudyZipper(source, dir.Path()).Zip(source.Study());
  finished.file.Release();  // as if the process had died before cleaning
  const TempFile part = TempFile::Create(dir.Path(), "cloud-ingest-crashed-", ".zip.part");
  ASSERT_EQ(2u, dir.Files().size());

  EXPECT_EQ(2u, StudyZipper::CleanStaleTempFiles(dir.Path()));
  EXPECT_TRUE(dir.Files().empty());
}

// ------------------------------------------------------------------- TempFile

TEST(TempFile, CreateReservesDistinctPrivateFiles) {
  ScratchDir dir;
  const TempFile a = TempFile::Create(dir.Path(), "cloud-ingest-x-", ".zip.part");
  const TempFile b = TempFile::Create(dir.Path(), "cloud-ingest-x-", ".zip.part");
  EXPECT_NE(a.Path(), b.Path());
  const std::regex pattern(".*/cloud-ingest-x-[0-9a-f]{16}\\.zip\\.part");
  EXPECT_TRUE(std::regex_match(a.Path(), pattern)) << a.Path();
  struct stat info {};
  ASSERT_EQ(0, ::stat(a.Path().c_str(), &info));
  EXPECT_EQ(0600u, info.st_mode & 0777);
  EXPECT_EQ(0, info.st_size);
  EXPECT_THROW(TempFile::Create(dir / "missing", "p-", ".s"), std::runtime_error);
}

TEST(TempFile, DestructorRemovesTheFile) {
  ScratchDir dir;
  std::string path;
  {
    const TempFile file = TempFile::Create(dir.Path(), "t-", ".tmp");
    path = file.Path();
    WriteFile(path, "data");
    ASSERT_TRUE(Exists(path));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(TempFile, DestructorRemovesTheFileDuringAnException) {
  ScratchDir dir;
  std::string path;
  try {
    const TempFile file = TempFile::Create(dir.Path(), "t-", ".tmp");
    path = file.Path();
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(path.empty());
  EXPECT_FALSE(Exists(path));
}

TEST(TempFile, ReleaseKeepsTheFile) {
  ScratchDir dir;
  std::string path;
  {
    TempFile file = TempFile::Create(dir.Path(), "t-", ".tmp");
    path = file.Release();
    EXPECT_FALSE(file.Owns());
    EXPECT_TRUE(file.Path().empty());
  }
  EXPECT_TRUE(Exists(path));
}

TEST(TempFile, MovesTransferOwnership) {
  ScratchDir dir;
  TempFile first = TempFile::Create(dir.Path(), "t-", ".tmp");
  const std::string firstPath = first.Path();
  TempFile moved(std::move(first));
  EXPECT_FALSE(first.Owns());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(firstPath, moved.Path());

  TempFile second = TempFile::Create(dir.Path(), "t-", ".tmp");
  const std::string secondPath = second.Path();
  second = std::move(moved);  // the file second owned before goes away
  EXPECT_FALSE(Exists(secondPath));
  EXPECT_TRUE(Exists(firstPath));
  second.Remove();
  EXPECT_FALSE(Exists(firstPath));
  EXPECT_FALSE(second.Owns());
  second.Remove();  // twice is harmless
}

TEST(TempFile, RenameKeepsOwnershipUnderTheNewName) {
  ScratchDir dir;
  const std::string target = dir / "renamed.zip";
  {
    TempFile file = TempFile::Create(dir.Path(), "t-", ".zip.part");
    const std::string old = file.Path();
    file.RenameTo(target);
    EXPECT_EQ(target, file.Path());
    EXPECT_FALSE(Exists(old));
    EXPECT_TRUE(Exists(target));
    EXPECT_THROW(file.RenameTo(dir / "missing/x"), std::runtime_error);
    EXPECT_EQ(target, file.Path());  // a failed rename changes nothing
  }
  EXPECT_FALSE(Exists(target));
}

// ------------------------------------------------------------- FileBodySource

TEST(FileBodySource, StreamsExactBytesInChunksAndRewinds) {
  ScratchDir dir;
  const std::string content = Pseudorandom("body", 1024 * 1024 + 17);
  WriteFile(dir / "body.zip", content);
  FileBodySource body(dir / "body.zip");
  EXPECT_EQ(content.size(), body.Size());

  std::vector<char> buffer(4093);  // not a divisor of the size
  std::string collected;
  for (size_t n; (n = body.Read(buffer.data(), buffer.size())) > 0;) {
    ASSERT_LE(n, buffer.size());
    collected.append(buffer.data(), n);
  }
  EXPECT_TRUE(collected == content);
  EXPECT_EQ(0u, body.Read(buffer.data(), buffer.size()));  // stays at the end

  body.Rewind();
  ASSERT_EQ(100u, body.Read(buffer.data(), 100));
  EXPECT_EQ(content.substr(0, 100), std::string(buffer.data(), 100));
  body.Rewind();  // a rewind in the middle starts over too
  collected.clear();
  for (size_t n; (n = body.Read(buffer.data(), buffer.size())) > 0;)
    collected.append(buffer.data(), n);
  EXPECT_TRUE(collected == content);
  EXPECT_EQ(0u, body.Read(buffer.data(), 0));
}

TEST(FileBodySource, EmptyFile) {
  ScratchDir dir;
  WriteFile(dir / "empty", "");
  FileBodySource body(dir / "empty");
  char buffer[8];
  EXPECT_EQ(0u, body.Size());
  EXPECT_EQ(0u, body.Read(buffer, sizeof buffer));
}

TEST(FileBodySource, NeverReadsPastTheSizeSeenAtOpening) {
  ScratchDir dir;
  WriteFile(dir / "growing", "0123456789");
  FileBodySource body(dir / "growing");
  {
    std::ofstream out(dir / "growing", std::ios::binary | std::ios::app);
    out << "more bytes";
  }
  char buffer[64];
  EXPECT_EQ(10u, body.Read(buffer, sizeof buffer));
  EXPECT_EQ("0123456789", std::string(buffer, 10));
  EXPECT_EQ(0u, body.Read(buffer, sizeof buffer));
}

TEST(FileBodySource, AFileThatShrankIsAnError) {
  ScratchDir dir;
  WriteFile(dir / "shrinking", std::string(1000, 'x'));
  FileBodySource body(dir / "shrinking");
  std::filesystem::resize_file(dir / "shrinking", 400);
  char buffer[600];
  EXPECT_EQ(400u, body.Read(buffer, sizeof buffer));
  EXPECT_THROW(body.Read(buffer, sizeof buffer), std::runtime_error);
}

TEST(FileBodySource, KeepsReadingAfterThePathIsRemoved) {
  ScratchDir dir;
  WriteFile(dir / "gone", "still here");
  FileBodySource body(dir / "gone");
  ASSERT_EQ(0, ::unlink((dir / "gone").c_str()));
  char buffer[32];
  const size_t n = body.Read(buffer, sizeof buffer);
  EXPECT_EQ("still here", std::string(buffer, n));
}

TEST(FileBodySource, MissingFileOrFolderThrows) {
  ScratchDir dir;
  EXPECT_THROW(FileBodySource(dir / "missing"), std::runtime_error);
  EXPECT_THROW(FileBodySource(dir.Path()), std::runtime_error);
}

TEST(FileBodySource, ClosesItsDescriptor) {
  ScratchDir dir;
  WriteFile(dir / "fd", "x");
  const size_t before = OpenDescriptors();
  {
    FileBodySource body(dir / "fd");
    EXPECT_EQ(before + 1, OpenDescriptors());
  }
  EXPECT_EQ(before, OpenDescriptors());
}
