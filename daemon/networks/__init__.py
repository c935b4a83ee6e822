"""Networks: bridges, addresses, names and published ports of containers (libnetwork's bridge driver)."""
