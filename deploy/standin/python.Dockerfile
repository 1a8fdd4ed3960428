# Stand-in for python:3.11.11-slim-bookworm where no image registry answers: Debian bookworm's own Python 3.11
# (3.11.2), with pip free to install into the system as in the official image.
FROM localhost/renewal-standin-debian:bookworm
RUN rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
CMD ["python3"]
