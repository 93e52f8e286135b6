// curve_socket: makes a ZeroMQ socket a CURVE client of the broker. Bus-internal
// (it includes ZeroMQ); every connecting socket of the bus goes through it, so
// the three keys are always set together.
#pragma once

#include <zmq.hpp>

#include <string>

namespace poolbus {

inline void set_curve_client(zmq::socket_t& socket, const std::string& server_public, const std::string& own_public,
                             const std::string& own_secret) {
  socket.set(zmq::sockopt::curve_serverkey, server_public);
  socket.set(zmq::sockopt::curve_publickey, own_public);
  socket.set(zmq::sockopt::curve_secretkey, own_secret);
}

}  // namespace poolbus
