from django.db import models


class Course(models.Model):
    name = models.CharField(max_length=100)


class Student(models.Model):
    name = models.CharField(max_length=100)
    course = models.ForeignKey(Course, null=True, on_delete=models.SET_NULL)
