from django.urls import path

from students import views

urlpatterns = [
    path("api/students/", views.student_list),
    path("api/courses/", views.course_list),
    path("api/students/create/", views.student_create),
]
