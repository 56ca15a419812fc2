#include "Core/Store/StudyRow.h"

#include <type_traits>

#include "Core/Store/StoreErrors.h"

namespace CloudIngest {

namespace {

template <typename Owner, typename T>
Owner OwnerOf(T Owner::*);  // only named in decltype: the struct a member belongs to

template <typename Owner, typename RowType>
auto& Part(RowType& row) {
  if constexpr (std::is_same_v<Owner, StudyRow>) {
    return row;
  } else {
    return row.record;
  }
}

// A column holding its field's natural type (text, real or integer).
template <auto Member>
struct Field {
  using Owner = decltype(OwnerOf(Member));
  using T = std::remove_reference_t<decltype(std::declval<Owner&>().*Member)>;
  using Stored =
      std::conditional_t<std::is_same_v<T, std::string>, std::string,
                         std::conditional_t<std::is_floating_point_v<T>, double, int64_t>>;

  static constexpr ColumnType Type() {
    if constexpr (std::is_same_v<Stored, std::string>) {
      return ColumnType::Text;
    } else if constexpr (std::is_same_v<Stored, double>) {
      return ColumnType::Real;
    } else {
      return ColumnType::Integer;
    }
  }

  static ColumnValue Get(const StudyRow& row) {
    return static_cast<Stored>(Part<Owner>(row).*Member);
  }

  static void Set(StudyRow& row, const ColumnValue& value) {
    T& field = Part<Owner>(row).*Member;
    if constexpr (std::is_same_v<T, bool>) {
      field = std::get<int64_t>(value) != 0;
    } else {
      field = static_cast<T>(std::get<Stored>(value));
    }
  }
};

ColumnValue GetState(const StudyRow& row) {
  return ToString(row.record.state);
}

void SetState(StudyRow& row, const ColumnValue& value) {
  const std::string& state = std::get<std::string>(value);
  const auto parsed = ParseStudyState(state);
  if (!parsed) {
    // orthanc_id is the first column, read before.
    throw DatabaseError("unknown state '" + state + "' for study " + row.record.orthancId);
  }
  row.record.state = *parsed;
}

template <auto Member>
StudyColumn Map(const char* name, int sqliteSince = 1) {
  return {name, Field<Member>::Type(), sqliteSince, &Field<Member>::Get, &Field<Member>::Set};
}

}  // namespace

const std::vector<StudyColumn>& StudyColumns() {
  static const std::vector<StudyColumn> columns = {
      Map<&StudyRecord::orthancId>("orthanc_id"),
      {"state", ColumnType::Text, 1, &GetState, &SetState},
      Map<&StudyRecord::studyInstanceUid>("study_instance_uid"),
      Map<&StudyRecord::orderId>("order_id"),
      Map<&StudyRecord::instancesSent>("instances_sent"),
      Map<&StudyRecord::instancesTotal>("instances_total"),
      Map<&StudyRecord::bytesSent>("bytes_sent"),
      Map<&StudyRecord::attempts>("attempts"),
      Map<&StudyRecord::lastError>("last_error"),
      Map<&StudyRecord::trigger>("send_trigger"),
      Map<&StudyRecord::mode>("mode"),
      Map<&StudyRecord::extraMetadata>("extra_metadata"),
      Map<&StudyRecord::requestedBy>("requested_by"),
      Map<&StudyRecord::sentSignature>("sent_signature"),
      Map<&StudyRecord::resendRequested>("resend_requested"),
      Map<&StudyRecord::patientName>("patient_name"),
      Map<&StudyRecord::patientId>("patient_id"),
      Map<&StudyRecord::studyDate>("study_date"),
      Map<&StudyRecord::studyDescription>("study_description"),
      Map<&StudyRecord::createdAt>("created_at"),
      Map<&StudyRecord::updatedAt>("updated_at"),
      Map<&StudyRecord::nextAttemptAt>("next_attempt_at"),
      Map<&StudyRecord::sentAt>("sent_at"),
      Map<&StudyRow::forced>("forced"),
      Map<&StudyRow::pendingTrigger>("pending_trigger"),
      Map<&StudyRow::pendingMode>("pending_mode"),
      Map<&StudyRow::pendingExtraMetadata>("pending_extra_metadata"),
      Map<&StudyRow::pendingRequestedBy>("pending_requested_by"),
      Map<&StudyRow::pendingForce>("pending_force"),
      // SQLite version 2: the outcome of the last real send, restored when a
      // study is taken up again and found unchanged.
      Map<&StudyRow::sentOrderId>("sent_order_id", 2),
      Map<&StudyRow::sentInstances>("sent_instances", 2),
      Map<&StudyRow::sentBytes>("sent_bytes", 2),
      Map<&StudyRow::sentAttempts>("sent_attempts", 2),
      // SQLite version 3: the claim generation, so that a stale attempt's
      // writes are recognised (0 for existing rows: their next claim is 1).
      Map<&StudyRecord::claim>("claim", 3),
      // SQLite version 4: the node holding a Sending study, and its lease.
      Map<&StudyRecord::node>("node", 4),
      Map<&StudyRecord::leaseExpiresAt>("lease_expires_at", 4),
      // SQLite version 5 (with the receipts table): a manual send that waits for SendWindows like
      // automatic ones.
      Map<&StudyRecord::respectWindows>("respect_windows", 5),
      Map<&StudyRow::pendingRespectWindows>("pending_respect_windows", 5),
  };
  return columns;
}

std::string ColumnDefinition(const StudyColumn& column, const char* realType,
                             const char* integerType) {
  const std::string name = column.name;
  if (name == "orthanc_id") return "TEXT PRIMARY KEY NOT NULL";
  if (name == "state") return "TEXT NOT NULL";
  switch (column.type) {
    case ColumnType::Text:
      return "TEXT NOT NULL DEFAULT ''";
    case ColumnType::Real:
      return std::string(realType) + " NOT NULL DEFAULT 0";
    case ColumnType::Integer:
      break;
  }
  return std::string(integerType) + " NOT NULL DEFAULT 0";
}

std::string StudyColumnList(const std::string& prefix) {
  std::string list;
  for (const StudyColumn& column : StudyColumns()) {
    list += (list.empty() ? "" : ", ") + prefix + column.name;
  }
  return list;
}

StudyRow ReadStudyRow(const std::function<ColumnValue(int index, ColumnType type)>& read,
                      const std::string& operation) {
  StudyRow row;
  int index = 0;
  try {
    for (const StudyColumn& column : StudyColumns()) {
      column.set(row, read(index++, column.type));
    }
  } catch (const DatabaseError& e) {
    throw DatabaseError("plugin database, " + operation + ": " + e.what());
  }
  return row;
}

}  // namespace CloudIngest
