"""The same tests on Django's own Redis backend and on rediscache's (run_tests.sh runs both)."""
import unittest

from django.core.cache import cache
from django.test import TestCase

from .caching import has_tags
from .models import Course, Student


class ListPagesTests(TestCase):
    def setUp(self):
        cache.clear()
        Course.objects.create(name="Physics")
        Student.objects.create(name="Ada")

    def test_list_page_is_served_from_the_cache(self):
        self.assertEqual(self.client.get("/api/students/").json(), {"students": ["Ada"]})
        with self.assertNumQueries(0):
            self.assertEqual(self.client.get("/api/students/").json(), {"students": ["Ada"]})

    def test_a_write_shows_up_on_the_next_read(self):
        self.client.get("/api/students/")
        self.assertEqual(self.client.post("/api/students/create/", {"name": "Grace"}).status_code, 201)
        self.assertEqual(self.client.get("/api/students/").json(), {"students": ["Ada", "Grace"]})
        Student.objects.filter(name="Ada").delete()
        self.assertEqual(self.client.get("/api/students/").json(), {"students": ["Grace"]})

    def test_low_level_cache_api(self):
        cache.set("answer", 42)
        self.assertEqual(cache.get("answer"), 42)
        self.assertEqual(cache.incr("answer"), 43)
        self.assertEqual(cache.get_or_set("computed", lambda: "v"), "v")
        self.assertIs(cache.add("answer", 0), False)
        self.assertEqual(cache.get_many(["answer", "computed", "none"]), {"answer": 43, "computed": "v"})

    @unittest.skipUnless(has_tags(), "Django's own backend has no tags: a write clears everything")
    def test_a_student_write_keeps_the_course_pages(self):
        self.client.get("/api/students/")
        self.client.get("/api/courses/")
        Student.objects.create(name="Grace")
        with self.assertNumQueries(0):
            self.assertEqual(self.client.get("/api/courses/").json(), {"courses": ["Physics"]})
        with self.assertNumQueries(1):
            self.assertEqual(self.client.get("/api/students/").json(), {"students": ["Ada", "Grace"]})

    @unittest.skipUnless(has_tags(), "Django's own backend has no tags")
    def test_a_course_write_drops_both_lists(self):
        self.client.get("/api/students/")
        self.client.get("/api/courses/")
        Course.objects.create(name="Maths")
        with self.assertNumQueries(1):
            self.client.get("/api/courses/")
        with self.assertNumQueries(1):
            self.client.get("/api/students/")
