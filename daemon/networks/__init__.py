"""Networks: bridges, addresses, names and published ports of containers (Docker's libnetwork, bridge driver)."""
