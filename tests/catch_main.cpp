// The one Catch2 main, compiled once as an OBJECT library (it is the slowest translation unit).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
