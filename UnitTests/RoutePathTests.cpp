// The router's path matching (Rest/RoutePath.h): what each placeholder accepts,
// and that every other shape of path is told apart from the routes.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "Rest/RoutePath.h"

namespace CloudIngest {
namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> segments;
  PathSegments split(path);
  std::string_view segment;
  while (split.Next(segment)) segments.emplace_back(segment);
  return segments;
}

TEST(RoutePath, SegmentsAreWhatLiesBetweenTheSlashes) {
  EXPECT_EQ((std::vector<std::string>{"", "studies", "x", "send"}), Split("/studies/x/send"));
  EXPECT_EQ((std::vector<std::string>{""}), Split(""));
  EXPECT_EQ((std::vector<std::string>{"", ""}), Split("/"));
  EXPECT_EQ((std::vector<std::string>{"", "", "a", ""}), Split("//a/"));
  EXPECT_EQ((std::vector<std::string>{"a"}), Split("a"));
  EXPECT_EQ(64u * 1024 + 1, Split(std::string(64 * 1024, '/')).size());
}

TEST(RoutePath, LiteralRoutesMatchExactly) {
  EXPECT_EQ("", MatchRoute("/studies/send", "/studies/send"));
  for (const char* other : {"/studies/send/", "studies/send", "//studies/send", "/studies//send",
                            "/studies/sendx", "/Studies/send", "/studies", ""}) {
    EXPECT_FALSE(MatchRoute(other, "/studies/send")) << other;
  }
}

TEST(RoutePath, StudyIdsAreUpTo64LowerCaseHexDigitsAndDashes) {
  const std::string id = "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd";
  EXPECT_EQ(id, MatchRoute("/studies/" + id + "/send", "/studies/{study}/send"));
  EXPECT_EQ(std::string(64, 'f'),
            MatchRoute("/studies/" + std::string(64, 'f'), "/studies/{study}"));
  for (const std::string& bad :
       {std::string(), std::string(65, 'a'), std::string("ABCD"), std::string("abcg"),
        std::string("ab cd"), std::string("a.b"), std::string("ab\0cd", 5)}) {
    EXPECT_FALSE(MatchRoute("/studies/" + bad + "/send", "/studies/{study}/send")) << bad;
  }
  EXPECT_FALSE(MatchRoute("/studies/" + id + "/send/", "/studies/{study}/send"));
  EXPECT_FALSE(MatchRoute("/studies/" + id, "/studies/{study}/send"));
}

TEST(RoutePath, OrderIdsAreUpTo128CharactersOtherThanSlash) {
  EXPECT_EQ("any thing?&", MatchRoute("/orders/any thing?&/metadata", "/orders/{order}/metadata"));
  const std::string longest(128, 'x');
  EXPECT_EQ(longest, MatchRoute("/orders/" + longest + "/metadata", "/orders/{order}/metadata"));
  EXPECT_FALSE(MatchRoute("/orders/" + longest + "x/metadata", "/orders/{order}/metadata"));
  EXPECT_FALSE(MatchRoute("/orders//metadata", "/orders/{order}/metadata"));
  EXPECT_FALSE(MatchRoute("/orders/a/b/metadata", "/orders/{order}/metadata"));
}

TEST(RoutePath, AnyIsOneNonEmptySegmentOfAnyLength) {
  const std::string huge(100 * 1024, 'a');
  EXPECT_EQ(huge, MatchRoute("/studies/" + huge + "/cancel", "/studies/{any}/cancel"));
  EXPECT_FALSE(MatchRoute("/studies//cancel", "/studies/{any}/cancel"));
  EXPECT_FALSE(MatchRoute("/studies/" + huge + "/" + huge + "/cancel", "/studies/{any}/cancel"));
  EXPECT_FALSE(
      MatchRoute("/studies/" + std::string(64 * 1024, '/') + "cancel", "/studies/{any}/cancel"));
}

TEST(RoutePath, AnUnknownPlaceholderIsAProgrammingError) {
  EXPECT_THROW(MatchRoute("/studies/x", "/studies/{stduy}"), std::logic_error);
}

}  // namespace
}  // namespace CloudIngest
