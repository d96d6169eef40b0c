"""The edge: Varnish in front of the Nginx origin (nginx/edge.vcl.j2) and the client that purges it."""
