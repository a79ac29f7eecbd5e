from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from .caching import list_page, pages_changed
from .models import Course, Student


@list_page(300, tags=["students"])
def student_list(request):
    return JsonResponse({"students": list(Student.objects.order_by("id").values_list("name", flat=True))})


@list_page(300, tags=["courses"])
def course_list(request):
    return JsonResponse({"courses": list(Course.objects.order_by("id").values_list("name", flat=True))})


@require_POST
def student_create(request):
    Student.objects.create(name=request.POST["name"])
    return JsonResponse({"ok": True}, status=201)


@receiver([post_save, post_delete], sender=Student)
def students_changed(**kwargs):
    pages_changed("students")


@receiver([post_save, post_delete], sender=Course)
def courses_changed(**kwargs):
    pages_changed("courses", "students")
