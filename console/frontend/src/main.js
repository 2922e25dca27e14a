import { createApp } from 'vue'
// Element Plus components are imported on demand by the build (vite.config.js); the services called from
// scripts (ElMessage, ElMessageBox, ElNotification) need their styles named here.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import 'element-plus/es/components/notification/style/css'
import App from './App.vue'
import { router } from './router'
import './style.css'

createApp(App).use(router).mount('#app')
