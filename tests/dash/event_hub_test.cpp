#include <catch2/catch.hpp>

#include <thread>

#include "dash/event_hub.hpp"

using namespace poolbus;
using namespace std::chrono_literals;

TEST_CASE("event_hub: a reader gets everything after its cursor in one read") {
  event_hub hub;
  hub.publish("old");
  event_hub::session reader(hub);
  CHECK(hub.readers() == 1);
  hub.publish(event_hub::frame("a", "{}"));
  hub.publish(event_hub::frame("b", "{\"x\":1}"));
  auto got = hub.read(reader.cursor, 0ms);
  CHECK(got.data == "event: a\ndata: {}\n\nevent: b\ndata: {\"x\":1}\n\n");
  CHECK(hub.read(reader.cursor, 0ms).data.empty());
}

TEST_CASE("event_hub: a reader that fell out of the ring is told to reset; others go on") {
  event_hub hub(4);
  event_hub::session slow(hub);
  event_hub::session quick(hub);
  for (int i = 0; i < 3; ++i) hub.publish(std::to_string(i));
  CHECK(hub.read(quick.cursor, 0ms).data == "012");
  for (int i = 3; i < 7; ++i) hub.publish(std::to_string(i));  // the ring now holds 3..6
  CHECK(hub.read(quick.cursor, 0ms).data == "3456");
  auto behind = hub.read(slow.cursor, 0ms);
  CHECK(behind.behind);
  CHECK(hub.dropped() == 1);
}

TEST_CASE("event_hub: a waiting reader wakes on publish and on close") {
  event_hub hub;
  event_hub::session reader(hub);
  std::thread writer([&] { hub.publish("x"); });
  auto got = hub.read(reader.cursor, 5s);
  writer.join();
  CHECK(got.data == "x");
  std::thread closer([&] { hub.close(); });
  CHECK(hub.read(reader.cursor, 5s).closed);
  closer.join();
  {
    event_hub::session other(hub);
    CHECK(hub.readers() == 2);
  }
  CHECK(hub.readers() == 1);
}
