"""Locust's side of the load generator comparison in `make bench`: the same load as wrk's
(one URL, no wait between requests), with Locust's fastest client."""
from locust import FastHttpUser, task


class Reader(FastHttpUser):
    @task
    def constant(self):
        self.client.get("/")
