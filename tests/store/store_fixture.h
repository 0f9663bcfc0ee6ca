#pragma once

// A store in a fresh temp dir, with small helpers, and raw RocksDB access for
// tests that damage or inspect the files behind the store's back.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

#include "store/event_store.h"
#include "store/format.h"
#include "tests/store/backends.h"
#include "tests/store/process_script.h"
#include "tests/support/test_util.h"

namespace keel::store::testing {

using keel::testing::TempDir;

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(Durability durability = Durability::kSync, bool commit_on_caller = true) {
    store_.reset();
    StoreOptions options;
    options.path = dir_.path();
    options.durability = durability;
    options.commit_on_caller = commit_on_caller;
    auto opened = backend_->open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  // A second read-write open of the same dir, beside store_ (or after it).
  Result<std::unique_ptr<EventStore>> OpenAgain() {
    StoreOptions options;
    options.path = dir_.path();
    return backend_->open(options);
  }
  void Close() {
    if (store_) {
      ASSERT_TRUE(store_->Close().ok());
    }
    store_.reset();
  }

  Result<AppendResult> Append(const std::string& stream, uint64_t expected,
                              std::vector<events::Draft> drafts) {
    return store_->Append(AppendRequest{stream, expected, std::move(drafts)});
  }

  std::vector<events::StoredEvent> ReadAll(const std::string& stream) {
    auto events = store_->ReadStream(stream);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    return events.ok() ? std::move(events).value() : std::vector<events::StoredEvent>{};
  }

  static std::vector<uint64_t> Seqs(const std::vector<events::StoredEvent>& events) {
    std::vector<uint64_t> seqs;
    for (const auto& e : events) seqs.push_back(e.seq());
    return seqs;
  }

  std::vector<Problem> VerifyAll(std::string_view stream = {}) {
    auto problems = store_->Verify(stream);
    EXPECT_TRUE(problems.ok()) << problems.status().ToString();
    return problems.ok() ? std::move(problems).value() : std::vector<Problem>{};
  }

  TempDir dir_;
  const Backend* backend_ = &Backends().front();  // set by a suite run per backend
  std::unique_ptr<EventStore> store_;
};

// A fixture run once per backend (Backends()): the TCK's suites.
class PerBackend : public StoreFixture, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override {
    backend_ = &GetParam();
    StoreFixture::SetUp();
  }
};

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

// The store's RocksDB opened directly (the store must be closed).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
    for (const char* name : format::kColumnFamilies) {
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* db = nullptr;
    status_ = rocksdb::DB::Open(rocksdb::DBOptions(), path + "/db", cfs, &handles_, &db);
    db_.reset(db);
  }
  ~RawDb() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  bool ok() const { return status_.ok(); }
  std::string error() const { return status_.ToString(); }
  // Column family by name (format::kEventsCf, ...).
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const {
    for (auto* h : handles_) {
      if (h->GetName() == name) return h;
    }
    return nullptr;
  }
  std::string Get(std::string_view cf_name, const std::string& key) const {
    std::string value;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), cf(cf_name), key, &value).ok()) << key;
    return value;
  }
  void Put(std::string_view cf_name, const std::string& key, const std::string& value) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    EXPECT_TRUE(db_->Put(wo, cf(cf_name), key, value).ok());
  }
  void Delete(std::string_view cf_name, const std::string& key) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    EXPECT_TRUE(db_->Delete(wo, cf(cf_name), key).ok());
  }
  rocksdb::DB* db() const { return db_.get(); }

 private:
  rocksdb::Status status_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace keel::store::testing
