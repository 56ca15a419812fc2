#include "Core/Packaging/ZipWriter.h"

namespace CloudIngest {

namespace {

std::string ErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

}  // namespace

ZipWriter::ZipWriter(const std::string& path) : path_(path) {
  int openError = 0;
  archive_.reset(zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &openError));
  if (!archive_) throw ZipError("cannot create " + path + ": " + ErrorText(openError));
}

void ZipWriter::Add(const std::string& entryName, zip_source_t* source, ZipMethod method) {
  if (source == nullptr) {
    throw ZipError("cannot add " + entryName + " to " + path_ + ": " +
                   zip_strerror(archive_.get()));
  }
  const zip_int64_t index =
      zip_file_add(archive_.get(), entryName.c_str(), source, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(source);  // not adopted by the archive when adding fails
    throw ZipError("cannot add " + entryName + " to " + path_ + ": " +
                   zip_strerror(archive_.get()));
  }
  const zip_int32_t libzipMethod = method == ZipMethod::Deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE;
  if (zip_set_file_compression(archive_.get(), static_cast<zip_uint64_t>(index), libzipMethod, 0) !=
      0) {
    throw ZipError("cannot set the compression of " + entryName + ": " +
                   zip_strerror(archive_.get()));
  }
}

void ZipWriter::AddFile(const std::string& entryName, const std::string& filePath,
                        ZipMethod method) {
  // Length -1: the whole file (libzip 1.7 and later).
  zip_source_t* const source = zip_source_file(archive_.get(), filePath.c_str(), 0, -1);
  if (source == nullptr) {
    throw ZipError("cannot read " + filePath + ": " + zip_strerror(archive_.get()));
  }
  Add(entryName, source, method);
}

void ZipWriter::Close() {
  if (zip_close(archive_.get()) != 0) {
    throw ZipError("cannot write " + path_ + ": " + zip_strerror(archive_.get()));
  }
  archive_.release();  // zip_close() freed it
}

}  // namespace CloudIngest
